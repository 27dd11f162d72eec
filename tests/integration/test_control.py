"""Control of running jobs through the API: wait, cancel, restart, priorities, auto-delete, failures."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import ray
import yaml

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates
from tests.polling import poll_until
from tork_ray.coordinator.actor import Coordinator
from tork_ray.domain.states import JobState, TaskState
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import open_store


def job_doc(name: str, *tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "tasks": list(tasks), **fields}


def sh(name: str, run: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, "run": run, **fields}


def post(engine: LiveEngine, doc: dict[str, Any]) -> Any:
    return engine.http.post("/jobs", json=doc)


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def containers(engine: LiveEngine, docker_client: Any, job_id: str) -> list[Any]:
    # ignore_removed: a container may go between the SDK's listing and its look at each one.
    labelled = {"label": f"tork_ray.job-id={job_id}"}
    return docker_client.containers.list(all=True, filters=labelled, ignore_removed=True)  # type: ignore[no-any-return]


# --- wait ---------------------------------------------------------------------------------------------


def test_wait_returns_the_finished_job(live_engine: LiveEngine) -> None:
    response = post(live_engine, job_doc("waited", sh("quick", "echo -n fast > $TORK_OUTPUT"), wait={"timeout": "30s"}))
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["state"] == "COMPLETED"
    assert job["execution"][0]["result"] == "fast"


def test_wait_times_out_with_408(live_engine: LiveEngine) -> None:
    # Gated: the job cannot end before the test lets it, so the wait surely outlasts its 1s.
    response = post(live_engine, job_doc("too slow to wait for", sh("gated", GATED), wait={"timeout": "1s"}))
    assert response.status_code == 408
    assert response.json() == {"message": "timeout waiting for job to complete"}
    job_id = poll_until(lambda: _running_named(live_engine, "too slow to wait for"), 60, "the job to run")
    assert live_engine.http.put(f"/jobs/{job_id}/cancel").status_code == 200


def test_wait_returns_at_once_when_the_job_is_cancelled(live_engine_both: LiveEngine) -> None:
    answer: dict[str, Any] = {}

    def submit() -> None:
        answer["response"] = post(
            live_engine_both, job_doc("wait then cancel", sh("nap", "sleep 60"), wait={"timeout": "60s"})
        )

    waiter = threading.Thread(target=submit)
    waiter.start()
    job_id = poll_until(lambda: _running_named(live_engine_both, "wait then cancel"), 60, "the job to run")
    assert live_engine_both.http.put(f"/jobs/{job_id}/cancel").status_code == 200
    poll_until(lambda: not waiter.is_alive(), 30, "the waiting submit to answer")
    assert answer["response"].status_code == 200
    assert answer["response"].json()["state"] == "CANCELLED"


def _running_named(engine: LiveEngine, name: str) -> str | None:
    for item in engine.http.get("/jobs", params={"size": 20}).json()["items"]:
        if item["name"] == name and item["state"] == "RUNNING":
            return str(item["id"])
    return None


# --- cancel and restart -------------------------------------------------------------------------------


def test_cancel_and_restart_carry_on_from_the_current_task(live_engine_both: LiveEngine, docker_client: Any) -> None:
    # The second task runs until its gate opens: cancelled while it surely runs, then let through on restart.
    doc = job_doc("restartable", sh("first", "echo -n one > $TORK_OUTPUT", var="first"), sh("second", GATED))
    job_id = post(live_engine_both, doc).json()["id"]
    poll_until(lambda: _state_of_task(live_engine_both, job_id, "second") == "RUNNING", 60, "the second task to run")
    assert live_engine_both.http.put(f"/jobs/{job_id}/cancel").json() == {"status": "OK"}
    cancelled = live_engine_both.wait_for(job_id, "CANCELLED")
    assert [t["state"] for t in cancelled["execution"]] == ["COMPLETED", "CANCELLED"]
    poll_until(lambda: containers(live_engine_both, docker_client, job_id) == [], 30, "the container removed")

    assert live_engine_both.http.put(f"/jobs/{job_id}/restart").json() == {"status": "OK"}
    poll_until(lambda: open_gates(docker_client, job_id), 60, "the restarted task's container, to let it finish")
    job = live_engine_both.wait_for(job_id, "COMPLETED")
    assert [t["state"] for t in job["execution"]] == ["COMPLETED", "CANCELLED", "COMPLETED"]
    assert job["context"]["tasks"]["first"] == "one"
    assert "failedAt" not in job

    again = live_engine_both.http.put(f"/jobs/{job_id}/restart")
    assert again.status_code == 400
    assert again.json()["message"] == "job is COMPLETED and can not be restarted"
    cancel = live_engine_both.http.put(f"/jobs/{job_id}/cancel")
    assert cancel.status_code == 400 and cancel.json()["message"] == "job is not running"


def test_a_cancel_right_after_the_submit_is_not_refused(live_engine: LiveEngine, tmp_path: Path) -> None:
    # accept() answers before it schedules the job's first task (a few ms later). A cancel in between must
    # find the job started, not PENDING (which Tork refuses with 400). Run on the coordinator class itself,
    # with its own store and scope, so that the cancel surely lands inside the delay; the task's queue has no
    # node, so nothing reaches Ray.
    settings = replace(live_engine.settings, data_dir=tmp_path, ray=replace(live_engine.settings.ray, namespace="x"))
    doc = job_doc("cancelled at once", sh("never", "echo ran", queue="no-node-serves-this"))
    spec = parse_job(yaml.safe_dump(doc).encode(), "text/yaml")

    async def accept_then_cancel() -> str:
        coordinator = Coordinator(settings)
        job_id = str((await coordinator.accept(spec))["id"])
        await coordinator.cancel_job(job_id)
        await coordinator.shutdown()
        return job_id

    job_id = asyncio.run(accept_then_cancel())
    store = open_store(settings)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.CANCELLED
    assert [task.state for task in store.job_tasks(job_id)] == [TaskState.CANCELLED]


def test_cancel_and_restart_of_unknown_jobs_are_404(live_engine: LiveEngine) -> None:
    for action in ("cancel", "restart"):
        response = live_engine.http.put(f"/jobs/{'f' * 32}/{action}")
        assert response.status_code == 404
        assert response.json() == {"message": "job not found"}


def _task_in(engine: LiveEngine, job_id: str, name: str, state: str) -> bool:
    return _state_of_task(engine, job_id, name) == state


def _state_of_task(engine: LiveEngine, job_id: str, name: str) -> str | None:
    tasks = [t for t in engine.http.get(f"/jobs/{job_id}").json()["execution"] if t["name"] == name]
    return str(tasks[-1]["state"]) if tasks else None


def test_cancelling_a_parent_cancels_its_attached_subjob(live_engine_both: LiveEngine) -> None:
    doc = job_doc("parent", {"name": "child", "subjob": {"name": "sleepy child", "tasks": [sh("nap", "sleep 60")]}})
    job_id = post(live_engine_both, doc).json()["id"]
    child_id = poll_until(lambda: _subjob_id(live_engine_both, job_id), 60, "the sub-job")
    live_engine_both.wait_for(child_id, "RUNNING")
    live_engine_both.http.put(f"/jobs/{job_id}/cancel")
    assert live_engine_both.wait_for(child_id, "CANCELLED")["state"] == "CANCELLED"
    assert live_engine_both.wait_for(job_id)["state"] == "CANCELLED"


def test_cancelling_an_attached_subjob_cancels_its_parent(live_engine: LiveEngine) -> None:
    doc = job_doc("parent 2", {"name": "child", "subjob": {"name": "child 2", "tasks": [sh("nap", "sleep 60")]}})
    job_id = post(live_engine, doc).json()["id"]
    child_id = poll_until(lambda: _subjob_id(live_engine, job_id), 60, "the sub-job")
    live_engine.wait_for(child_id, "RUNNING")
    live_engine.http.put(f"/jobs/{child_id}/cancel")
    assert live_engine.wait_for(job_id)["state"] == "CANCELLED"


def _subjob_id(engine: LiveEngine, job_id: str) -> str | None:
    execution = engine.http.get(f"/jobs/{job_id}").json()["execution"]
    return execution[0].get("subjob", {}).get("id") if execution else None


# --- failures -----------------------------------------------------------------------------------------


def test_a_failed_child_fails_the_job_and_cancels_its_siblings(
    live_engine_both: LiveEngine, docker_client: Any
) -> None:
    doc = job_doc(
        "parallel failure",
        {"name": "both", "parallel": {"tasks": [sh("sleeper", "sleep 60"), sh("breaker", "sleep 1; exit 4")]}},
    )
    job_id = post(live_engine_both, doc).json()["id"]
    job = live_engine_both.wait_for(job_id)
    states = {t["name"]: t["state"] for t in job["execution"]}
    assert job["state"] == "FAILED"
    assert states == {"both": "FAILED", "sleeper": "CANCELLED", "breaker": "FAILED"}
    assert job["error"].startswith("exit code 4")
    poll_until(lambda: containers(live_engine_both, docker_client, job_id) == [], 30, "the sibling's container removed")


def test_unknown_name_in_the_first_task_fails_the_job(live_engine: LiveEngine) -> None:
    doc = job_doc("bad expression", sh("t", "true", env={"X": "{{ nonsense.value }}"}))
    job = live_engine.wait_for(post(live_engine, doc).json()["id"])
    assert job["state"] == "FAILED"
    assert "unknown name nonsense" in job["execution"][0]["error"]
    assert job["error"] == job["execution"][0]["error"]


def test_evaluation_failure_of_a_later_task_fails_it(live_engine: LiveEngine) -> None:
    doc = job_doc("late bad expression", sh("ok", "true"), sh("bad", "true", env={"X": "{{ int('x') }}"}))
    job = live_engine.wait_for(post(live_engine, doc).json()["id"])
    assert job["state"] == "FAILED"
    assert [t["state"] for t in job["execution"]] == ["COMPLETED", "FAILED"]
    assert "error evaluating expression" in job["execution"][1]["error"]


def test_sandbox_escape_fails_the_task_without_leaking(live_engine: LiveEngine) -> None:
    doc = job_doc("escape", sh("t", "true", env={"X": "{{ ''.__class__.__mro__ }}"}))
    job = live_engine.wait_for(post(live_engine, doc).json()["id"])
    assert job["state"] == "FAILED"
    error = job["execution"][0]["error"]
    assert "<class" not in error and "object" not in error


def test_job_output_failure_fails_the_job(live_engine: LiveEngine) -> None:
    doc = job_doc("bad output", sh("t", "true"), output="{{ tasks.nothing + 1 }}")
    job = live_engine.wait_for(post(live_engine, doc).json()["id"])
    assert job["state"] == "FAILED"
    assert "error evaluating expression" in job["error"]


# --- priorities and auto-delete -----------------------------------------------------------------------


def test_higher_priority_runs_first_when_the_queue_is_full(live_engine: LiveEngine, docker_client: Any) -> None:
    # The "other" queue has a single slot: a gated blocker holds it until both jobs wait in its queue.
    blocker = post(live_engine, job_doc("blocker", sh("hold", GATED, queue="other"))).json()["id"]
    live_engine.wait_for(blocker, "RUNNING")
    low = post(live_engine, job_doc("low", sh("low", "true", queue="other", priority=1))).json()["id"]
    high = post(live_engine, job_doc("high", sh("high", "true", queue="other", priority=9))).json()["id"]
    for job_id, name in ((low, "low"), (high, "high")):
        poll_until(partial(_task_in, live_engine, job_id, name, "SCHEDULED"), 30, f"{name} queued behind the blocker")
    poll_until(lambda: open_gates(docker_client, blocker), 30, "the blocker's gate opened")
    low_job, high_job = live_engine.wait_for(low), live_engine.wait_for(high)
    assert stamp(high_job["execution"][0]["startedAt"]) < stamp(low_job["execution"][0]["startedAt"])


def test_auto_delete_removes_the_job_after_its_delay(live_engine_both: LiveEngine) -> None:
    doc = job_doc("short-lived", sh("t", "true"), autoDelete={"after": "1s"})
    job = live_engine_both.wait_for(post(live_engine_both, doc).json()["id"])
    assert job["state"] == "COMPLETED" and "deleteAt" in job

    def swept() -> bool:
        ray.get(live_engine_both.coordinator.sweep.remote())
        return live_engine_both.http.get(f"/jobs/{job['id']}").status_code == 404

    poll_until(swept, 30, "the job deleted")
    assert live_engine_both.http.get(f"/tasks/{job['execution'][0]['id']}").status_code == 404


def test_failed_jobs_get_no_delete_at(live_engine: LiveEngine) -> None:
    doc = job_doc("failing short-lived", sh("t", "exit 1"), autoDelete={"after": "1s"})
    job = live_engine.wait_for(post(live_engine, doc).json()["id"])
    assert job["state"] == "FAILED" and "deleteAt" not in job
