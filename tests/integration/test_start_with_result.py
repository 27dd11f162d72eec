"""Starts reported with results, on real Ray with the shell runtime: an engine of this module's own whose workers
hold every start back for an hour (worker.start_report_delay = 1h), so whatever a test does happens inside the
window, before any start report: webhooks still see RUNNING, progress and (redacted) log parts are stored, cancel,
timeout, a killed worker and a restarted coordinator behave as the semantics say. A long task past the default
window (50ms) still shows RUNNING while it runs: on the session engine, with Docker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.integration.outage_engine import OutageEngine, outage_engine
from tests.integration.test_runtime_shell import alive
from tests.integration.workers import kill_task_workers
from tests.polling import poll_until
from tests.webhook_receiver import Receiver, receiver
from tork_ray.settings import DatastoreSettings
from tork_ray.store.outage import StoreRetrySettings

SECRET = "start-window-canary-51c2"


@pytest.fixture(scope="module")
def held(live_engine: LiveEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageEngine]:
    base = live_engine.settings
    data = tmp_path_factory.mktemp("held_starts")
    with outage_engine(
        base,
        data,
        DatastoreSettings(sqlite_path=str(data / "tork.db"), encryption_key=base.datastore.encryption_key),
        StoreRetrySettings(),
        runtime=replace(base.runtime, type="shell"),
        worker=replace(base.worker, start_report_delay="1h"),
    ) as engine:
        yield engine


def submit(engine: OutageEngine, document: dict[str, Any]) -> str:
    response = engine.http.post("/jobs", json=document)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def job(engine: OutageEngine, job_id: str) -> dict[str, Any]:
    return engine.http.get(f"/jobs/{job_id}").json()  # type: ignore[no-any-return]


def ended(engine: OutageEngine, job_id: str) -> dict[str, Any] | None:
    found = job(engine, job_id)
    return found if found["state"] in ("COMPLETED", "FAILED", "CANCELLED") else None


def only_task(engine: OutageEngine, job_id: str) -> dict[str, Any] | None:
    tasks = job(engine, job_id).get("execution") or []
    return tasks[0] if len(tasks) == 1 else None


def gate_script(gate: Path, before: str = "") -> str:
    return f"{before}until [ -e {gate} ]; do sleep 0.05; done"


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def test_a_short_task_completes_with_running_seen_by_webhooks_and_its_start_stored(
    held: OutageEngine, hooks: Receiver
) -> None:
    document = {
        "name": "start with result",
        "webhooks": [{"url": f"{hooks.url}/task", "event": "task.StateChange"}],
        "tasks": [{"name": "short", "run": "echo -n done > $TORK_OUTPUT"}],
    }
    job_id = submit(held, document)
    done = poll_until(partial(ended, held, job_id), 60, "the job to end")
    assert done["state"] == "COMPLETED", done
    [task] = done["execution"]
    assert task["result"] == "done" and task["startedAt"] and task["nodeId"]
    assert task["scheduledAt"] <= task["startedAt"] <= task["completedAt"]

    def states() -> list[str]:
        return [body["state"] for body in hooks.bodies("/task")]

    poll_until(lambda: len(states()) >= 3, 30, "the task's three calls")
    assert states() == ["SCHEDULED", "RUNNING", "COMPLETED"]
    running = hooks.bodies("/task")[1]
    assert running["startedAt"] == task["startedAt"] and "completedAt" not in running


def test_progress_and_redacted_log_parts_are_stored_before_the_start_is_reported(
    held: OutageEngine, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    script = gate_script(gate, 'echo 50 > $TORK_PROGRESS; echo "the token is $TOKEN"; ')
    document = {
        "name": "before the start report",
        "secrets": {"token": SECRET},
        "tasks": [{"name": "gated", "run": script, "env": {"TOKEN": "{{ secrets.token }}"}}],
    }
    job_id = submit(held, document)
    try:
        task = poll_until(partial(only_task, held, job_id), 60, "the task")

        def logged() -> str | None:
            log = held.http.get(f"/tasks/{task['id']}/log").json()
            text = "".join(part["contents"] for part in log.get("items", []))
            return text if "the token is" in text else None

        text = poll_until(logged, 60, "the log part stored")
        stored = _stored_log(held, task["id"])  # as stored, not as the API shows it: the log guard redacted it
        assert SECRET not in text and SECRET not in stored and "the token is [REDACTED]" in stored
        shown = poll_until(lambda: (t := only_task(held, job_id)) and t.get("progress") == 50 and t, 30, "progress")
        assert shown["state"] == "SCHEDULED" and not shown.get("startedAt")  # no start reported yet
    finally:
        gate.touch()
    done = poll_until(partial(ended, held, job_id), 60, "the job to end")
    assert done["state"] == "COMPLETED" and done["execution"][0]["startedAt"]


def _stored_log(engine: OutageEngine, task_id: str) -> str:
    from tork_ray.store.store import open_store

    store = open_store(engine.settings)
    try:
        return "".join(part["contents"] for part in store.log_parts_after(task_id, 0))
    finally:
        store.close()


def test_a_cancel_inside_the_window_stops_the_process_and_the_task_never_ran_as_far_as_the_store_says(
    held: OutageEngine, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job_id = submit(
        held, {"name": "cancelled early", "tasks": [{"name": "t", "run": f"echo $$ > {pid_file}; sleep 300"}]}
    )
    pid = int(poll_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the process to start"))
    assert job(held, job_id)["execution"][0]["state"] == "SCHEDULED"
    assert held.http.put(f"/jobs/{job_id}/cancel").status_code == 200
    done = poll_until(partial(ended, held, job_id), 60, "the cancel")
    assert done["state"] == "CANCELLED" and done["execution"][0]["state"] == "CANCELLED"
    poll_until(lambda: not alive(pid), 60, "the task's process gone")
    assert not done["execution"][0].get("startedAt")


def test_a_timeout_inside_the_window_fails_the_task_with_its_start(held: OutageEngine) -> None:
    job_id = submit(held, {"name": "timed out", "tasks": [{"name": "t", "run": "sleep 30", "timeout": "1s"}]})
    done = poll_until(partial(ended, held, job_id), 60, "the timeout")
    [task] = done["execution"]
    assert done["state"] == "FAILED" and task["state"] == "FAILED"
    assert task["error"].startswith("context deadline exceeded") and task["startedAt"] and task["nodeId"]


def test_a_worker_killed_inside_the_window_runs_its_task_again_without_spending_a_retry(
    held: OutageEngine, tmp_path: Path
) -> None:
    """The executor died before the coordinator heard of the task's start (the window is 1 h here): for all it
    knows the task never started, so it is sent again, once, reporting its start at once from then on, as after
    a coordinator restart (below); its retry is not spent. Its start was heard of, the task is lost instead and
    its retry rules decide (tests/integration/test_worker_death.py)."""
    marker = tmp_path / "first-attempt"
    script = f"if [ -e {marker} ]; then echo -n second > $TORK_OUTPUT; else touch {marker}; sleep 300; fi"
    job_id = submit(held, {"name": "worker killed", "tasks": [{"name": "t", "run": script, "retry": {"limit": 1}}]})
    poll_until(marker.exists, 60, "the first attempt to run")
    assert kill_task_workers(), "no worker ran the task"
    done = poll_until(partial(ended, held, job_id), 90, "the task run again to end")
    assert done["state"] == "COMPLETED", done
    [task] = done["execution"]
    assert task["result"] == "second" and task.get("startedAt") and not task.get("redelivered")
    assert not (task.get("retry") or {}).get("attempts")


def test_a_coordinator_restart_inside_the_window_runs_the_task_again_reporting_its_start_at_once(
    held: OutageEngine, tmp_path: Path
) -> None:
    runs, gate = tmp_path / "runs", tmp_path / "go"
    script = gate_script(gate, f"echo run >> {runs}; ")
    job_id = submit(held, {"name": "restarted", "tasks": [{"name": "t", "run": script}]})
    try:
        poll_until(lambda: runs.exists() and runs.read_text().count("run") == 1, 60, "the first run")
        ray.kill(held.coordinator, no_restart=False)  # Ray restarts it; it recovers from the store
        poll_until(lambda: runs.read_text().count("run") == 2, 120, "the run again after the restart")
        # Requeued as not started (no redelivery spent), it now reports its start at once.
        task = poll_until(
            lambda: (t := only_task(held, job_id)) and t["state"] == "RUNNING" and t, 60, "its start reported"
        )
        assert not task.get("redelivered")
    finally:
        gate.touch()
    done = poll_until(partial(ended, held, job_id), 60, "the job to end")
    assert done["state"] == "COMPLETED" and [t["state"] for t in done["execution"]] == ["COMPLETED"]


def test_a_long_task_shows_running_while_it_runs_on_the_default_window(
    live_engine: LiveEngine, docker_client: Any
) -> None:
    assert live_engine.settings.worker.start_report_seconds() == 0.05  # the default the session engine runs
    document = {"name": "long", "tasks": [{"name": "t", "image": TEST_IMAGE, "run": GATED}]}
    job_id = live_engine.submit_json(document)["id"]
    poll_until(partial(running_containers, docker_client, job_id), 60, "the container running")

    def running() -> dict[str, Any] | None:
        tasks = live_engine.http.get(f"/jobs/{job_id}").json().get("execution") or []
        return tasks[0] if tasks and tasks[0]["state"] == "RUNNING" else None

    task = poll_until(running, 60, "the task shown RUNNING while its container runs")
    assert running_containers(docker_client, job_id) and task["startedAt"] and task["nodeId"]
    poll_until(lambda: open_gates(docker_client, job_id), 30, "the gate opened")
    done = live_engine.wait_for(job_id)
    assert done["state"] == "COMPLETED" and done["execution"][0]["startedAt"] == task["startedAt"]
