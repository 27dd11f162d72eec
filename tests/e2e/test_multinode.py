"""Queues are Ray resources: tasks land only on nodes serving their queue, at most `slots` at a time there; a
node started with `tork-ray worker` joins a running cluster with its queue and leaves when stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def overlap(spans: list[list[float]]) -> int:
    """The largest number of spans running at one instant."""
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


@pytest.fixture(scope="module")
def report(docker_client: Any) -> dict[str, Any]:
    """One cluster (tests/e2e/multinode.py, a process of its own) for both tests here: its start is the slow part."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.multinode"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=500
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_tasks_are_routed_and_capped_by_queue_resources(report: dict[str, Any]) -> None:
    assert report["states"] == {"alpha": "COMPLETED", "beta": "COMPLETED"}
    assert report["alpha"]["nodes"] == [report["nodes"]["alpha"]]
    assert report["beta"]["nodes"] == [report["nodes"]["beta"]]
    assert overlap(report["alpha"]["spans"]) == 1  # queue:alpha = 1
    assert overlap(report["beta"]["spans"]) <= 2  # queue:beta = 2
    # A queue no node serves keeps its task in the coordinator's backlog, visible, not lost in Ray.
    assert report["nowhere"]["size"] == 1 and report["nowhere"]["subscribers"] == 0


def test_a_worker_joins_runs_its_queue_and_leaves(report: dict[str, Any]) -> None:
    """`tork-ray worker`: a node joins a running cluster with its queues, runs their tasks, and leaves when stopped
    (was tests/e2e/test_worker_join.py, with a cluster of its own)."""
    joined = report["joined"]
    assert joined["state"] == "COMPLETED"
    assert joined["task_nodes"] == [joined["node"]]  # the task ran on the node the command started
    assert joined["left"] is True
