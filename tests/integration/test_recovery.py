"""The coordinator is restartable from the store alone: kill the actor mid-job and the job carries on."""

from __future__ import annotations

from typing import Any

import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.polling import poll_until


def test_a_killed_coordinator_resumes_its_jobs(live_engine: LiveEngine, docker_client: Any) -> None:
    doc = {
        "name": "survives a coordinator crash",
        "tasks": [
            {
                "name": "nap",
                "image": TEST_IMAGE,
                # Gated: surely running when the coordinator dies, however slow this machine is today.
                "run": f"{GATED}; echo -n rested > $TORK_OUTPUT",
                "retry": {"limit": 1},
            },
            {"name": "after", "image": TEST_IMAGE, "run": "echo -n after > $TORK_OUTPUT", "var": "after"},
        ],
    }
    job_id = live_engine.http.post("/jobs", json=doc).json()["id"]
    running = poll_until(lambda: running_containers(docker_client, job_id), 60, "the nap's container running")
    first = running[0].labels["tork_ray.task-id"]

    # SIGKILL the actor's process; Ray restarts it (max_restarts=-1) with its memory gone.
    ray.kill(live_engine.coordinator, no_restart=False)

    def finished() -> bool:
        open_gates(docker_client, job_id, skip_task=first)  # the attempts after the crash may finish
        return live_engine.http.get(f"/jobs/{job_id}").json()["state"] in ("COMPLETED", "FAILED")

    poll_until(finished, 90, "the job to finish after the coordinator's restart")
    job = live_engine.wait_for(job_id, "COMPLETED", "FAILED")
    assert job["state"] == "COMPLETED", job
    nap = [t for t in job["execution"] if t["name"] == "nap"]
    assert [t["state"] for t in nap] == ["FAILED", "COMPLETED"]
    assert "coordinator restarted" in nap[0]["error"]
    assert job["context"]["tasks"]["after"] == "after"

    # The lost attempt's container was found by its label and removed.
    label = {"label": f"tork_ray.task-id={nap[0]['id']}"}
    poll_until(
        lambda: not docker_client.containers.list(all=True, filters=label, ignore_removed=True),
        30,
        "the lost attempt's container removed",
    )
