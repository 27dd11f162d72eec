"""What a task's log hides comes partly from its job, read once per job and kept until the job is saved again
(store/logguard.py: JobHiddenCache). On a real SQLite and PostgreSQL: the kept values follow every save of the
job, a deleted job's are dropped, and a sub-job's log hides the parent's secrets rendered into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import store_url
from tork_ray.domain.models import Job, Task
from tork_ray.domain.redact import REDACTED
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.store import Store

LATER_SECRET = "hunter2-later-value"
PARENT_SECRET = "parent-token-9c1e"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with store_url(request.param, tmp_path, "tork_logcache") as url:
        opened = Store(url)
        yield opened
        opened.close()


def running_task(job: Job, position: int) -> Task:
    return Task(job_id=job.id, position=position, name=f"t{position}", state=TaskState.RUNNING, spec={"run": "x"})


def stored_log(store: Store, task: Task) -> str:
    task.state = TaskState.COMPLETED
    store.save(tasks=[task])  # its end stores whatever its guard held back
    parts = sorted(store.task_log(task.id, 1, 50)[0], key=lambda part: part["number"])
    return "".join(part["contents"] for part in parts)


def test_a_value_the_job_gains_after_its_first_log_part_is_hidden_in_the_next_tasks_log(store: Store) -> None:
    job = Job(name="j", state=JobState.RUNNING, tasks=[{"name": "a"}, {"name": "b"}], task_count=2)
    first = running_task(job, 1)
    store.save(jobs=[job], tasks=[first])
    store.append_log(first.id, "nothing to hide yet\n")  # the job's values are read and kept here
    assert stored_log(store, first) == "nothing to hide yet\n"

    # The first task's result, under a secret-looking var, joins the job's context: the kept values are stale.
    job.context = {"tasks": {"db_password": LATER_SECRET}}
    second = running_task(job, 2)
    store.save(jobs=[job], tasks=[second])
    store.append_log(second.id, f"connecting with {LATER_SECRET}\n")
    assert stored_log(store, second) == f"connecting with {REDACTED}\n"


def test_a_sub_jobs_log_hides_the_parents_secrets_rendered_into_it(store: Store) -> None:
    # The parent's secret reached the sub-job through an input (rendered in the parent's context), so the
    # sub-job holds it under a key that says nothing: only `hidden` says it is secret (coordinator/factory.py).
    sub = Job(name="sub", state=JobState.RUNNING, inputs={"tok": PARENT_SECRET}, hidden=[PARENT_SECRET])
    task = running_task(sub, 1)
    store.save(jobs=[sub], tasks=[task])
    store.append_log(task.id, f"token={PARENT_SECRET}\n")
    assert stored_log(store, task) == f"token={REDACTED}\n"


def test_a_deleted_jobs_values_are_dropped_and_a_new_job_under_its_id_is_read_afresh(store: Store) -> None:
    job = Job(name="j", state=JobState.RUNNING)
    first = running_task(job, 1)
    store.save(jobs=[job], tasks=[first])
    store.append_log(first.id, "first\n")
    store.delete_jobs([job.id])

    again = Job(id=job.id, name="j", state=JobState.RUNNING, secrets={"key": LATER_SECRET})
    task = running_task(again, 1)
    store.save(jobs=[again], tasks=[task])
    store.append_log(task.id, f"key {LATER_SECRET}\n")
    assert stored_log(store, task) == f"key {REDACTED}\n"
