"""A Ray worker process killed while it runs a task: the task's retry rules decide, and the error says why (on
both stores: the lost result and the retry are stored by each)."""

from __future__ import annotations

from functools import partial
from typing import Any

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.integration.workers import kill_task_workers
from tests.polling import poll_until


def _gated_job(name: str, retry: dict[str, int] | None) -> dict[str, Any]:
    task: dict[str, Any] = {"name": "gated", "image": TEST_IMAGE, "run": f"{GATED}; echo -n done > $TORK_OUTPUT"}
    if retry is not None:
        task["retry"] = retry
    return {"name": name, "tasks": [task]}


def _no_containers(docker_client: Any, job_id: str) -> bool:
    labelled = {"label": f"tork_ray.job-id={job_id}"}
    return not docker_client.containers.list(all=True, filters=labelled, ignore_removed=True)


def test_a_killed_worker_fails_its_task_clearly_and_retry_rules_decide(
    live_engine_both: LiveEngine, docker_client: Any
) -> None:
    live_engine = live_engine_both
    retried = live_engine.submit_json(_gated_job("retried after its worker died", {"limit": 1}))["id"]
    alone = live_engine.submit_json(_gated_job("no retry", None))["id"]
    for job_id in (retried, alone):  # the default queue has two slots: both run at once
        poll_until(partial(running_containers, docker_client, job_id), 60, f"job {job_id} running")

    killed = kill_task_workers()
    assert len(killed) == 2, killed

    def finished() -> bool:
        open_gates(docker_client, retried)  # the retry's container, once it runs
        return live_engine.http.get(f"/jobs/{retried}").json()["state"] in ("COMPLETED", "FAILED")

    poll_until(finished, 90, "the retried job to finish")
    done = live_engine.wait_for(retried)
    failed = live_engine.wait_for(alone)

    assert done["state"] == "COMPLETED", done
    attempts = [(t["state"], t.get("result")) for t in done["execution"]]
    assert attempts == [("FAILED", None), ("COMPLETED", "done")], done["execution"]
    assert failed["state"] == "FAILED", failed
    assert [t["state"] for t in failed["execution"]] == ["FAILED"]
    for error in (done["execution"][0]["error"], failed["execution"][0]["error"], failed["error"]):
        assert error.startswith("task lost: the worker process running the task died"), error
    # The dead workers' watchdogs removed their containers: nothing of either job is left in Docker.
    for job_id in (retried, alone):
        poll_until(partial(_no_containers, docker_client, job_id), 30, f"job {job_id}'s containers gone")
