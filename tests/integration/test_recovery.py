"""The coordinator is restartable from the store alone: kill the actor mid-job and the job carries on."""

from __future__ import annotations

import time
from typing import Any

import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine


def test_a_killed_coordinator_resumes_its_jobs(live_engine: LiveEngine, docker_client: Any) -> None:
    doc = {
        "name": "survives a coordinator crash",
        "tasks": [
            {
                "name": "nap",
                "image": TEST_IMAGE,
                "run": "sleep 3; echo -n rested > $TORK_OUTPUT",
                "retry": {"limit": 1},
            },
            {"name": "after", "image": TEST_IMAGE, "run": "echo -n after > $TORK_OUTPUT", "var": "after"},
        ],
    }
    job_id = live_engine.http.post("/jobs", json=doc).json()["id"]
    live_engine.wait_for(job_id, "RUNNING")

    # SIGKILL the actor's process; Ray restarts it (max_restarts=-1) with its memory gone.
    ray.kill(live_engine.coordinator, no_restart=False)

    job = live_engine.wait_for(job_id, "COMPLETED", "FAILED", timeout=90)
    assert job["state"] == "COMPLETED", job
    nap = [t for t in job["execution"] if t["name"] == "nap"]
    assert [t["state"] for t in nap] == ["FAILED", "COMPLETED"]
    assert "coordinator restarted" in nap[0]["error"]
    assert job["context"]["tasks"]["after"] == "after"

    # The lost attempt's container was found by its label and removed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leftovers = docker_client.containers.list(
            all=True, filters={"label": f"tork_ray.task-id={nap[0]['id']}"}, ignore_removed=True
        )
        if not leftovers:
            break
        time.sleep(0.1)
    assert leftovers == []
