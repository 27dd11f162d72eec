"""A parallel's or each's count of children come home (tasks.completions, revision 0004): stored as a count, the
parent's sealed spec (every child's definition, for a parallel) left as it was; shown as Tork shows it; kept
over a coordinator restart and over the upgrade of a store whose count still sat in the spec (revision 0003).

The coordinator's own Engine, StateWriter and Store on SQLite and PostgreSQL, with an encryption key; nothing is
launched (no Ray): the test plays the worker, reporting each child's start and result as run_task does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, MetaData, String, Table, inspect, select, text, update

from tests.integration.engine_alone import finish, idle_engine
from tests.integration.test_migrations import HEAD, schema_diff
from tests.postgres import store_url
from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.recovery import resume_jobs
from tork_ray.domain.models import Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.spec.parse import parse_job
from tork_ray.store.crypto import SEALED, Cipher, SealedJSON, bind_cipher
from tork_ray.store.migrate import MIGRATIONS, current_revision
from tork_ray.store.store import Store, make_engine

KEY = "a key for the composite count tests"
CHILD = {"name": "child", "run": "true"}
KINDS: dict[str, dict[str, Any]] = {
    "parallel": {"name": "fan out", "parallel": {"tasks": [CHILD] * 3}},
    # concurrency 1: one child at a time, the next released by each completion (composite.py _release_next)
    "each": {"name": "items", "each": {"list": "{{ sequence(0, 3) }}", "concurrency": 1, "task": CHILD}},
}
AFTER = {"name": "after", "run": "true"}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path, "counts") as url:
        yield url


def coordinator(url: str) -> Engine:
    """A coordinator on the store at `url`; its queue has no slot, so SCHEDULED tasks wait for the test."""
    return idle_engine(url, KEY, "counts")


def submit(engine: Engine, kind: str) -> tuple[str, str]:
    """The job (the composite, then one more task) and its composite's id, once the composite is RUNNING."""
    body = {"name": f"counted {kind}", "tasks": [KINDS[kind], AFTER]}
    job = engine.submit(parse_job(json.dumps(body).encode(), "application/json"))
    parent = engine.writer.store.job_tasks(job.id)[0]
    assert parent.state is TaskState.RUNNING
    return job.id, parent.id


def waiting_children(store: Store, parent_id: str) -> list[Task]:
    return [
        t
        for t in store.job_tasks(parent_task(store, parent_id).job_id)
        if t.parent_id == parent_id and t.state is TaskState.SCHEDULED
    ]


def parent_task(store: Store, task_id: str) -> Task:
    task = store.get_task(task_id)
    assert task is not None
    return task


def shown(store: Store, job_id: str, parent_id: str, kind: str) -> Any:
    """The count as the API shows it: the job's `execution` (api/views.py) and GET /tasks/{id} alike."""
    execution = {task.id: task.public() for task in store.job_tasks(job_id)}
    assert execution[parent_id] == parent_task(store, parent_id).public()
    body = execution[parent_id]
    assert "completions" not in body  # only inside the block, as Tork's
    return body[kind]["completions"]


def stored_row(store: Store, task_id: str) -> tuple[Any, int]:
    """The parent's spec as stored (sealed: any write of it seals it again with a new nonce) and its count."""
    with store.engine.connect() as connection:
        row = connection.execute(text("SELECT spec, completions FROM tasks WHERE id = :id"), {"id": task_id}).one()
    return row[0], int(row[1])


def finish_next(engine: Engine, parent_id: str) -> None:
    waiting = waiting_children(engine.writer.store, parent_id)
    assert waiting, "a child of the composite should wait in its queue"
    finish(engine, waiting[0].id)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_childs_completion_stores_the_count_and_leaves_the_parents_spec_as_it_was(url: str, kind: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, kind)
    sealed_spec, count = stored_row(store, parent_id)
    assert SEALED in str(sealed_spec) and count == 0  # a JSON string: quoted on SQLite
    assert shown(store, job_id, parent_id, kind) == 0
    for done in (1, 2):
        finish_next(engine, parent_id)
        # Before revision 0004 each child rewrote (and sealed again) the parent's whole spec just to count.
        assert stored_row(store, parent_id) == (sealed_spec, done)
        assert shown(store, job_id, parent_id, kind) == done
        assert parent_task(store, parent_id).state is TaskState.RUNNING
    finish_next(engine, parent_id)
    parent = parent_task(store, parent_id)
    assert parent.state is TaskState.COMPLETED and parent.completions == 3
    assert shown(store, job_id, parent_id, kind) == 3
    after = [t for t in store.job_tasks(job_id) if t.name == "after"]
    assert [t.state for t in after] == [TaskState.SCHEDULED]  # the job moved on past the composite
    finish(engine, after[0].id)
    assert store.get_job(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]
    store.close()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_restarted_coordinator_carries_on_counting(url: str, kind: str) -> None:
    first = coordinator(url)
    job_id, parent_id = submit(first, kind)
    finish_next(first, parent_id)
    first.writer.store.close()  # the coordinator dies; its memory goes with it

    again = coordinator(url)
    store = again.writer.store
    assert resume_jobs(again) == 1
    assert parent_task(store, parent_id).completions == 1
    assert shown(store, job_id, parent_id, kind) == 1
    finish_next(again, parent_id)  # for the each: the next child is released by the restarted coordinator
    assert shown(store, job_id, parent_id, kind) == 2
    finish_next(again, parent_id)
    parent = parent_task(store, parent_id)
    assert parent.state is TaskState.COMPLETED and shown(store, job_id, parent_id, kind) == 3
    store.close()


def _downgrade_to_0003(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            assert current_revision(connection) == "0003"
            assert "completions" not in {c["name"] for c in inspect(connection).get_columns("tasks")}
    finally:
        engine.dispose()


def _count_in_spec(url: str, task_id: str, kind: str, count: int) -> None:
    """What 0003's coordinator stored: the count inside the parent's sealed spec."""
    tasks = Table("tasks", MetaData(), Column("id", String, primary_key=True), Column("spec", SealedJSON("tasks.spec")))
    engine = make_engine(url)
    bind_cipher(engine, Cipher(KEY))
    try:
        with engine.begin() as connection:
            spec = connection.execute(select(tasks.c.spec).where(tasks.c.id == task_id)).scalar_one()
            spec[kind] = {**spec[kind], "completions": count}
            connection.execute(update(tasks).where(tasks.c.id == task_id).values(spec=spec))
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_composite_left_running_by_revision_0003_keeps_its_count(url: str, kind: str) -> None:
    old = coordinator(url)
    job_id, parent_id = submit(old, kind)
    finish_next(old, parent_id)
    finish_next(old, parent_id)
    old.writer.store.close()
    # The store as the previous release left it: schema 0003, the count (2) in the sealed spec only.
    _downgrade_to_0003(url)
    _count_in_spec(url, parent_id, kind, 2)

    upgraded = coordinator(url)  # its store migrates to 0004 on opening
    store = upgraded.writer.store
    with store.engine.connect() as connection:
        assert current_revision(connection) == HEAD
    assert schema_diff(store) == []  # 0003 and back to head: exactly the models again
    assert parent_task(store, parent_id).completions == 2
    assert shown(store, job_id, parent_id, kind) == 2
    assert resume_jobs(upgraded) == 1
    finish_next(upgraded, parent_id)  # the third of three completes the composite: 2 were counted before
    parent = parent_task(store, parent_id)
    assert parent.state is TaskState.COMPLETED and shown(store, job_id, parent_id, kind) == 3
    assert [t.state for t in store.job_tasks(job_id) if t.name == "after"] == [TaskState.SCHEDULED]
    store.close()
