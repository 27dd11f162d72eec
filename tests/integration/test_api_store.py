"""The store's search, logs, users and counters: the same tests on SQLite (FTS5) and on a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.postgres import fresh_database
from tork_ray.domain.models import Job, Task, User, utcnow
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.store import Store


def _postgres_store() -> Iterator[Store]:
    with fresh_database("tork_store") as url:
        store = Store(url)
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite = Store(f"sqlite:///{tmp_path}/tork.db")
        yield sqlite
        sqlite.close()
    else:
        yield from _postgres_store()


def job(name: str, description: str = "", tags: tuple[str, ...] = (), minutes_ago: int = 0, **kw: object) -> Job:
    return Job(
        name=name,
        description=description,
        tags=list(tags),
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        **kw,  # type: ignore[arg-type]
    )


def names(store: Store, q: str | None, page: int = 1, size: int = 20) -> list[str]:
    return [j.name for j in store.list_jobs(page, size, q)[0]]


def test_search_words_stemming_state_tags(store: Store) -> None:
    store.save(jobs=[job("nightly builds", "compiles the code", ("red", "blue"), minutes_ago=3)])
    store.save(jobs=[job("weekly report", "emails the people", ("green",), minutes_ago=2)])
    store.import_jobs([job("Job 101 backup", "copies files", ("red",), minutes_ago=1)])
    assert names(store, "building") == ["nightly builds"]
    assert names(store, "compiled code") == ["nightly builds"]
    assert names(store, "the weekly") == ["weekly report"]  # stop words are dropped on both stores
    assert names(store, "101") == ["Job 101 backup"]
    assert names(store, "pending") == ["Job 101 backup", "weekly report", "nightly builds"]  # newest first
    assert names(store, "tag:red") == ["Job 101 backup", "nightly builds"]
    assert names(store, "tags:green,blue") == ["weekly report", "nightly builds"]
    assert names(store, "tags:red,blue") == ["Job 101 backup", "nightly builds"]  # a job with both: once
    assert names(store, "tag:red copies") == ["Job 101 backup"]
    assert names(store, "tag:nosuch") == []
    assert names(store, "absent") == []
    assert store.list_jobs(2, 2, "pending") == (store.list_jobs(1, 20, "pending")[0][2:], 3)
    assert store.list_jobs(1, 2, "tags:red,blue")[1] == 2


def test_index_follows_updates_and_deletes(store: Store) -> None:
    first = job("deploy service")
    store.save(jobs=[first])
    first.state = JobState.RUNNING
    first.progress = 50.0
    store.save(jobs=[first])
    assert names(store, "running deploy") == ["deploy service"]
    assert names(store, "pending deploy") == []
    first.state = JobState.COMPLETED
    store.save(jobs=[first])
    assert names(store, "completed") == ["deploy service"]
    store.delete_jobs([first.id])
    assert names(store, "deploy") == [] and names(store, None) == []


def test_log_search_totals_and_neighbours(store: Store) -> None:
    owner = job("logs")
    store.save(jobs=[owner])
    task = Task(job_id=owner.id, position=1)
    other = Task(job_id=owner.id, position=2)
    store.save(tasks=[task, other])
    for text_ in ("starting up\n", "jumping over things\n", "done now\n"):
        store.append_log(task.id, text_)
    store.append_log(other.id, "jumps again\n")
    parts, total = store.task_log(task.id, 1, 10, "jumped")
    assert [p["number"] for p in parts] == [2] and total == 3  # total ignores q, as Tork's
    assert [p["number"] for p in store.task_log(task.id, 1, 10)[0]] == [3, 2, 1]
    job_parts, job_total = store.job_log(owner.id, 1, 10, "jump")
    assert [(p["taskId"], p["number"]) for p in job_parts] == [(other.id, 1), (task.id, 2)] and job_total == 4
    assert store.neighbour_parts(parts) == {(task.id, 1): "starting up\n", (task.id, 3): "done now\n"}
    assert [p["number"] for p in store.log_parts_after(task.id, 1)] == [2, 3]
    since = store.job_log_since(owner.id, None)
    assert [p["contents"] for p in since][-1] == "jumps again\n"


def test_users_and_guest(store: Store) -> None:
    guest = store.get_user("guest")
    assert guest is not None and guest[0].disabled and guest[0].name == "Guest"
    user = User(id=uuid.uuid4().hex, name="Ann", username="ann", created_at=utcnow())
    assert store.create_user(user, "scrypt$hash")
    assert not store.create_user(User(id=uuid.uuid4().hex, name="Other", username="ann"), "x")
    found = store.get_user("ann")
    assert found is not None and found[0].id == user.id and found[1] == "scrypt$hash"
    assert store.get_user("nobody") is None


def test_counts_and_transition_counters(store: Store) -> None:
    running = job("counted")
    store.save(jobs=[running])
    running.state = JobState.RUNNING
    task = Task(job_id=running.id, position=1, state=TaskState.RUNNING, node_id="node-1", started_at=utcnow())
    store.save(jobs=[running], tasks=[task])
    assert store.running_counts() == (1, 1)
    assert store.running_tasks_by_node() == {"node-1": 1}
    task.state = TaskState.COMPLETED
    task.completed_at = task.started_at + timedelta(seconds=2) if task.started_at else None
    running.state = JobState.COMPLETED
    store.save(jobs=[running], tasks=[task])
    store.save(jobs=[running], tasks=[task])  # a repeated save is not a second transition
    counters = store.counters.snapshot()
    assert counters.jobs_finished == {"COMPLETED": 1} and counters.tasks_finished == {"COMPLETED": 1}
    assert counters.duration_count == 1 and 1.9 < counters.duration_sum < 2.1
    assert store.state_counts() == {"jobs": {"COMPLETED": 1}, "tasks": {"COMPLETED": 1}}
