"""Cluster mode, as cluster.yaml runs it: `tork-ray run coordinator` joins Ray and serves the API on Ray Serve;
where the coordinator and the API's replicas are placed, on the same cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(docker_client: Any) -> dict[str, Any]:
    """One cluster (tests/e2e/cluster_mode.py, a process of its own) for cluster mode and the placement checks:
    its start is the slow part."""
    # On PostgreSQL, as a cluster must be (cluster mode refuses a SQLite store by default).
    with fresh_database("cluster_mode") as url:
        env = {
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "TORK_DATASTORE_TYPE": "postgres",
            "TORK_DATASTORE_POSTGRES_DSN": url,
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.e2e.cluster_mode"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=720,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_coordinator_mode_serves_the_api_on_ray_serve(report: dict[str, Any]) -> None:
    assert report["exit"] == 0, report["stderr"]
    assert report["health"]["status"] == "UP"
    assert report["job"] == {"state": "COMPLETED", "tasks": {"task1": "hello world"}}


def test_coordinator_and_replicas_stay_on_the_head(report: dict[str, Any]) -> None:
    """Placement: the coordinator actor and the API's Serve replicas live on the head (the `tork:head` resource),
    also when they are created from a worker node and when Ray restarts the coordinator (was
    tests/e2e/test_placement.py, with a cluster of its own)."""
    placement = report["placement"]
    print("placement:", placement)
    head, worker = placement["head"], placement["worker"]
    assert placement["startedFrom"] == worker  # created from the worker ...
    assert placement["coordinator"] == head  # ... and placed on the head all the same
    assert placement["replicas"] == [head, head]
    assert placement["restartedOn"] == head
    assert placement["health"] == "UP"


def test_cluster_yaml_uses_commands_that_exist() -> None:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    assert config["provider"]["type"] == "local"
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert "tork-ray resources --head" in head and "tork-ray resources" in workers
    assert "tork-ray run coordinator" in head
    assert "RAY_enable_autoscaler_v2=0" in head
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tork-ray"), "resources"],
        env={**os.environ, "TORK_WORKER_QUEUES_DEFAULT": "4", "TORK_WORKER_QUEUES_GPU": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == {"queue:default": 4, "queue:gpu": 1}
