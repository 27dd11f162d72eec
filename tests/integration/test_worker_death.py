"""The worker process running a task killed: the task's retry rules decide, and the error says why. On both stores
with the default design (the queue's executor runs both tasks: one process killed), and with a Ray task per Tork
task (`worker.executor = task`: a worker process each). tests/e2e/test_executor_mode.py also kills an executor
with tasks still queued in it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.integration.outage_engine import OutageEngine, outage_engine
from tests.integration.workers import kill_task_workers
from tests.polling import poll_until
from tork_ray.settings import DatastoreSettings
from tork_ray.store.outage import StoreRetrySettings

EXECUTOR_LOST = "task lost: the executor process running the task died"
WORKER_LOST = "task lost: the worker process running the task died"


def _gated_job(name: str, retry: dict[str, int] | None) -> dict[str, Any]:
    task: dict[str, Any] = {"name": "gated", "image": TEST_IMAGE, "run": f"{GATED}; echo -n done > $TORK_OUTPUT"}
    if retry is not None:
        task["retry"] = retry
    return {"name": name, "tasks": [task]}


def _no_containers(docker_client: Any, job_id: str) -> bool:
    labelled = {"label": f"tork_ray.job-id={job_id}"}
    return not docker_client.containers.list(all=True, filters=labelled, ignore_removed=True)


@pytest.fixture(scope="module")
def task_engine(live_engine: LiveEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageEngine]:
    """The session engine's settings with worker.executor = task, on a store of its own."""
    base = live_engine.settings
    data = tmp_path_factory.mktemp("ray_task_engine")
    datastore = DatastoreSettings(sqlite_path=str(data / "tork.db"), encryption_key=base.datastore.encryption_key)
    worker = replace(base.worker, executor="task")
    with outage_engine(base, data, datastore, StoreRetrySettings(), worker=worker) as engine:
        yield engine


def test_a_killed_executor_fails_its_tasks_clearly_and_retry_rules_decide(
    live_engine_both: LiveEngine, docker_client: Any
) -> None:
    _killed_mid_task(live_engine_both.http, docker_client, processes=1, error=EXECUTOR_LOST)


def test_a_killed_ray_task_worker_fails_its_task_clearly_and_retry_rules_decide(
    task_engine: OutageEngine, docker_client: Any
) -> None:
    _killed_mid_task(task_engine.http, docker_client, processes=2, error=WORKER_LOST)


def _killed_mid_task(http: httpx.Client, docker_client: Any, processes: int, error: str) -> None:
    def submit(document: dict[str, Any]) -> str:
        response = http.post("/jobs", json=document)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def job(job_id: str) -> dict[str, Any]:
        return http.get(f"/jobs/{job_id}").json()  # type: ignore[no-any-return]

    retried = submit(_gated_job("retried after its worker died", {"limit": 1}))
    alone = submit(_gated_job("no retry", None))
    for job_id in (retried, alone):  # the default queue has two slots: both run at once
        poll_until(partial(running_containers, docker_client, job_id), 60, f"job {job_id} running")

    killed = kill_task_workers()
    # Idle executors of the session's other engines may be among them, but every process runs one here.
    assert len(killed) >= processes, killed

    def finished() -> bool:
        open_gates(docker_client, retried)  # the retry's container, once it runs
        return job(retried)["state"] in ("COMPLETED", "FAILED") and job(alone)["state"] == "FAILED"

    poll_until(finished, 90, "the retried job to finish")
    done, failed = job(retried), job(alone)
    assert done["state"] == "COMPLETED", done
    attempts = [(t["state"], t.get("result")) for t in done["execution"]]
    assert attempts == [("FAILED", None), ("COMPLETED", "done")], done["execution"]
    assert failed["state"] == "FAILED", failed
    assert [t["state"] for t in failed["execution"]] == ["FAILED"]
    for message in (done["execution"][0]["error"], failed["execution"][0]["error"], failed["error"]):
        assert message.startswith(error), message
    # The dead workers' watchdogs removed their containers: nothing of either job is left in Docker.
    for job_id in (retried, alone):
        poll_until(partial(_no_containers, docker_client, job_id), 30, f"job {job_id}'s containers gone")
