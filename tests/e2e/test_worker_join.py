"""`tork-ray worker`: a node joins a Ray cluster with its queues, runs their tasks, and leaves when stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_joins_runs_its_queue_and_leaves(docker_client: Any) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.worker_join"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["state"] == "COMPLETED"
    assert report["task_nodes"] == [report["node"]]  # the task ran on the node the command started
    assert report["left"] is True
