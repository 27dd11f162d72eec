"""The outbox rows a change stages are stored in that change's transaction (real StateWriter, real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, Task
from tork_ray.domain.redact import Redactor
from tork_ray.domain.states import JobState, TaskState
from tork_ray.settings import LimitsSettings
from tork_ray.store.store import Store
from tork_ray.store.webhook_outbox import outbox_rows
from tork_ray.webhooks.outbox import Staging, WebhookOutbox

TOKEN = "tok-5b1e77"


@pytest.fixture
def writer(tmp_path: Path) -> StateWriter:
    writer = StateWriter(Store(f"sqlite:///{tmp_path / 'tork.db'}"))
    woken: list[int] = []
    staging = Staging(writer.stage, writer.job, writer.after_commit)
    writer.watch(WebhookOutbox(staging, Redactor(), LimitsSettings(), lambda: woken.append(1)))
    return writer


def hooked_job(**changes: Any) -> Job:
    job = Job(
        name="hooked",
        task_count=1,
        secrets={"token": TOKEN},
        inputs={"api_password": "pw-123456", "who": "me"},
        webhooks=[
            {"url": "http://127.0.0.1:9/job", "headers": {"Authorization": "Bearer {{ secrets.token }}"}},
            {"url": "http://127.0.0.1:9/task", "event": "task.StateChange", "if": "task.State == 'COMPLETED'"},
        ],
        **changes,
    )
    job.context = {"inputs": job.inputs, "secrets": job.secrets, "tasks": {}}
    return job


def events_of(writer: StateWriter, job: Job) -> list[tuple[str, str]]:
    return [(row.event, json.loads(row.body)["state"]) for row in outbox_rows(writer.store, job.id)]


def test_rows_are_stored_with_the_change_and_rendered_then(writer: StateWriter) -> None:
    job = hooked_job()
    with writer.batch():
        writer.create_job(job)
        writer.move_job(job, JobState.SCHEDULED, position=1)
        assert outbox_rows(writer.store, job.id) == []  # nothing before the commit
    (row,) = outbox_rows(writer.store, job.id)
    assert (row.event, row.stream, row.state, row.attempts) == ("job.StateChange", f"{job.id}:0", "pending", 0)
    assert row.headers == {"Authorization": f"Bearer {TOKEN}"}
    body = json.loads(row.body)
    assert body["state"] == "PENDING" and body["inputs"] == {"api_password": "[REDACTED]", "who": "me"}


def test_a_rolled_back_event_leaves_no_call(writer: StateWriter) -> None:
    job = hooked_job()
    with pytest.raises(ValueError), writer.batch():
        writer.create_job(job)
        raise ValueError("the handler failed")
    assert outbox_rows(writer.store) == [] and writer.store.get_job(job.id) is None


def test_task_events_follow_if_and_a_stale_change_fires_nothing(writer: StateWriter) -> None:
    job = hooked_job()
    writer.create_job(job)
    writer.move_job(job, JobState.SCHEDULED, position=1)
    task = Task(job_id=job.id, position=1, name="t")
    writer.create_tasks([task])
    writer.move_task(task, TaskState.SCHEDULED)
    writer.move_task(task, TaskState.RUNNING, node_id="n")
    writer.move_job(job, JobState.RUNNING)
    writer.move_task(task, TaskState.COMPLETED, result=f"said {TOKEN}")
    writer.move_job(job, JobState.FAILED, error="boom")
    assert not writer.move_job(job, JobState.FAILED, error="again")  # stale: no second FAILED call
    assert events_of(writer, job) == [
        ("job.StateChange", "PENDING"),
        ("job.StateChange", "RUNNING"),
        ("task.StateChange", "COMPLETED"),
        ("job.StateChange", "FAILED"),
    ]
    task_row = outbox_rows(writer.store, job.id)[2]
    assert json.loads(task_row.body)["result"] == "said [REDACTED]"


def test_a_broken_webhook_never_fails_the_change(writer: StateWriter, caplog: pytest.LogCaptureFixture) -> None:
    job = hooked_job()
    job.webhooks = [{"url": "http://127.0.0.1:9/", "headers": ["not", "a", "map"]}]
    writer.create_job(job)
    assert writer.store.get_job(job.id) is not None and outbox_rows(writer.store) == []
    assert "could not be prepared" in caplog.text


def test_a_job_without_webhooks_stages_nothing(writer: StateWriter) -> None:
    job = Job(name="plain", task_count=1)
    writer.create_job(job)
    writer.move_job(job, JobState.SCHEDULED, position=1)
    writer.move_job(job, JobState.RUNNING)
    assert outbox_rows(writer.store) == []


def test_bad_headers_are_left_out_and_failed_templates_sent_empty(writer: StateWriter) -> None:
    job = hooked_job()
    job.webhooks = [{"url": "http://h/", "headers": {"Bad Name": "x", "X-Split": "a\r\nb", "X-Oops": "{{ nope }}"}}]
    writer.create_job(job)
    (row,) = outbox_rows(writer.store, job.id)
    assert row.headers == {"X-Oops": ""}


def test_progress_fires_job_and_task_progress(writer: StateWriter) -> None:
    job = hooked_job()
    job.webhooks = [
        {"url": "http://h/job", "event": "job.Progress"},
        {"url": "http://h/task", "event": "task.Progress", "if": "task.Progress > 40"},
    ]
    writer.create_job(job)
    writer.move_job(job, JobState.SCHEDULED, position=1)
    task = Task(job_id=job.id, position=1, name="t")
    writer.create_tasks([task])
    writer.move_task(task, TaskState.SCHEDULED)
    writer.update_task(task, progress=20.0)
    writer.update_task(task, progress=50.0)
    writer.update_job(job, progress=50.0)
    rows = [(r.event, json.loads(r.body).get("progress")) for r in outbox_rows(writer.store, job.id)]
    assert rows == [("task.Progress", 50.0), ("job.Progress", 50.0)]


def test_a_rendered_url_that_is_not_a_url_is_skipped(writer: StateWriter) -> None:
    job = hooked_job()
    job.webhooks = [{"url": "http://h/\x00"}, {"url": "gopher://h/"}, {"url": "http://h/ok"}]
    writer.create_job(job)
    assert [row.url for row in outbox_rows(writer.store, job.id)] == ["http://h/ok"]
