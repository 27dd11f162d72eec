"""Placement: the coordinator actor and the API's Serve replicas live on the head (the `tork:head` resource),
also when they are created from a worker node and when Ray restarts the coordinator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_coordinator_and_replicas_stay_on_the_head() -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.placement"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=420
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print("placement:", report)
    head, worker = report["head"], report["worker"]
    assert report["startedFrom"] == worker  # created from the worker ...
    assert report["coordinator"] == head  # ... and placed on the head all the same
    assert report["replicas"] == [head, head]
    assert report["restartedOn"] == head
    assert report["health"] == "UP"
