"""Cluster mode, as cluster.yaml runs it: `tork-ray run coordinator` joins Ray and serves the API on Ray Serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]


def test_coordinator_mode_serves_the_api_on_ray_serve(docker_client: Any) -> None:
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
            timeout=420,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, report["stderr"]
    assert report["health"]["status"] == "UP"
    assert report["job"] == {"state": "COMPLETED", "tasks": {"task1": "hello world"}}


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
