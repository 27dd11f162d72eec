"""Queues are Ray resources: tasks land only on nodes serving their queue, at most `slots` at a time there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def overlap(spans: list[list[float]]) -> int:
    """The largest number of spans running at one instant."""
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_tasks_are_routed_and_capped_by_queue_resources(docker_client: Any) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.multinode"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["states"] == {"alpha": "COMPLETED", "beta": "COMPLETED"}
    assert report["alpha"]["nodes"] == [report["nodes"]["alpha"]]
    assert report["beta"]["nodes"] == [report["nodes"]["beta"]]
    assert overlap(report["alpha"]["spans"]) == 1  # queue:alpha = 1
    assert overlap(report["beta"]["spans"]) <= 2  # queue:beta = 2
    # A queue no node serves keeps its task in the coordinator's backlog, visible, not lost in Ray.
    assert report["nowhere"]["size"] == 1 and report["nowhere"]["subscribers"] == 0
