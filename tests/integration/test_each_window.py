"""An each past the coordinator's window (coordinator.each.window): its children are all stored at its start, as
Tork stores them, but only the window's are held and live; the rest wait CREATED in the table and are released
one by one, in list order, as earlier ones come home. Memory is bounded by the window, not by the list (issue
12: "an each of 100,000 items runs in bounded memory"; the figure is benchmarks/each_items_bench.py's).

The coordinator's own Engine, StateWriter and Store on SQLite and PostgreSQL, with an encryption key; nothing is
launched (no Ray): the test plays the worker, reporting each child's start and result as run_task does."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.engine_alone import finish, idle_engine
from tests.postgres import store_url
from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.recovery import resume_jobs
from tork_ray.domain.models import ITEM_KEY, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.spec.parse import parse_job
from tork_ray.store.crypto import SEALED
from tork_ray.store.store import Store

KEY = "a key for the each window tests"
WINDOW = 4
ITEMS = 30
AFTER = {"name": "after", "run": "true"}
NOW = datetime.now(UTC).isoformat()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path, "window") as url:
        yield url


def coordinator(url: str) -> Engine:
    """A coordinator with a window of WINDOW; its queue has no slot, so SCHEDULED tasks wait for the test."""
    return idle_engine(url, KEY, "window", each_window=WINDOW)


def submit(engine: Engine, each: dict[str, Any]) -> tuple[str, str]:
    """The job (the each, then one more task) and the each's id."""
    body = {"name": "items", "tasks": [{"name": "items", "each": each}, AFTER]}
    job = engine.submit(parse_job(json.dumps(body).encode(), "application/json"))
    parent = engine.writer.store.job_tasks(job.id)[0]
    return job.id, parent.id


def items(count: int, **more: Any) -> dict[str, Any]:
    task = {"name": "item {{ item.index }}", "run": "echo {{ item.value }}"}
    return {"list": f"{{{{ sequence(0, {count}) }}}}", "task": task, **more}


def children(store: Store, job_id: str, parent_id: str) -> list[Task]:
    return [task for task in store.job_tasks(job_id) if task.parent_id == parent_id]


def index(task: Task) -> int:
    return int(task.spec[ITEM_KEY]["index"])


def by_state(tasks: list[Task]) -> Counter[TaskState]:
    return Counter(task.state for task in tasks)


def held(engine: Engine, parent_id: str) -> list[Task]:
    """The children the coordinator holds in memory."""
    return engine.writer.children(parent_id)


def scheduled_indexes(store: Store, job_id: str, parent_id: str) -> list[int]:
    return sorted(index(t) for t in children(store, job_id, parent_id) if t.state is TaskState.SCHEDULED)


def run_to_the_end(engine: Engine, job_id: str, parent_id: str, limit: int) -> list[int]:
    """Finishes the each's children, the lowest index first; the indexes in the order they were released."""
    store = engine.writer.store
    released: list[int] = scheduled_indexes(store, job_id, parent_id)
    for _ in range(ITEMS * 2):
        waiting = scheduled_indexes(store, job_id, parent_id)
        if not waiting:
            return released
        assert len(waiting) <= limit and len(held(engine, parent_id)) <= limit
        before = set(waiting)
        finish(engine, next(t.id for t in children(store, job_id, parent_id) if index(t) == waiting[0]))
        released += sorted(set(scheduled_indexes(store, job_id, parent_id)) - before)
    raise AssertionError("the each never ended")


def stored_item_indexes(store: Store, parent_id: str) -> list[int | None]:
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT item_index FROM tasks WHERE parent_id = :p"), {"p": parent_id}).all()
    return sorted(row[0] for row in rows)


def test_an_each_past_the_window_stores_every_child_holds_the_window_and_releases_in_list_order(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, items(ITEMS))
    stored = children(store, job_id, parent_id)
    # Every child is stored at the start, as Tork does; only the window's are live, the rest CREATED.
    assert len(stored) == ITEMS and by_state(stored) == {TaskState.SCHEDULED: WINDOW, TaskState.CREATED: ITEMS - WINDOW}
    assert scheduled_indexes(store, job_id, parent_id) == list(range(WINDOW))
    assert stored_item_indexes(store, parent_id) == list(range(ITEMS))
    assert sorted(index(t) for t in held(engine, parent_id)) == list(range(WINDOW))  # nothing else in memory
    # The stored ones are whole: rendered with their own item, sealed like any task.
    thirteenth = next(t for t in stored if index(t) == 13)
    assert thirteenth.name == "item 13" and thirteenth.spec[ITEM_KEY]["value"] == 13
    with store.engine.connect() as connection:
        spec = connection.execute(text("SELECT spec FROM tasks WHERE id = :i"), {"i": thirteenth.id}).scalar_one()
    assert SEALED in str(spec) and "echo" not in str(spec)

    assert run_to_the_end(engine, job_id, parent_id, WINDOW) == list(range(ITEMS))
    parent = store.get_task(parent_id)
    assert parent is not None and parent.state is TaskState.COMPLETED and parent.completions == ITEMS
    assert by_state(children(store, job_id, parent_id)) == {TaskState.COMPLETED: ITEMS}
    assert held(engine, parent_id) == []
    after = next(t for t in store.job_tasks(job_id) if t.name == "after")
    finish(engine, after.id)
    assert store.get_job(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]
    store.close()


def test_a_concurrency_under_the_window_is_the_each_s_own(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, items(ITEMS, concurrency=2))
    assert by_state(children(store, job_id, parent_id)) == {TaskState.SCHEDULED: 2, TaskState.CREATED: ITEMS - 2}
    assert run_to_the_end(engine, job_id, parent_id, 2) == list(range(ITEMS))
    store.close()


def test_an_each_within_the_window_is_as_before(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, items(WINDOW))
    assert by_state(children(store, job_id, parent_id)) == {TaskState.SCHEDULED: WINDOW}
    assert run_to_the_end(engine, job_id, parent_id, WINDOW) == list(range(WINDOW))
    store.close()


def test_cancelling_the_job_cancels_its_stored_children_in_bulk(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, items(ITEMS))
    finish(engine, children(store, job_id, parent_id)[0].id)
    cancelled_before = store.counters.snapshot().tasks_finished.get("CANCELLED", 0)
    engine.cancel_job(job_id)
    assert store.get_job(job_id).state is JobState.CANCELLED  # type: ignore[union-attr]
    states = by_state(children(store, job_id, parent_id))
    assert states == {TaskState.COMPLETED: 1, TaskState.CANCELLED: ITEMS - 1}, states
    assert (
        store.counters.snapshot().tasks_finished.get("CANCELLED", 0) - cancelled_before == ITEMS - 1 + 1
    )  # and the each
    assert held(engine, parent_id) == []
    store.close()


def test_a_restarted_coordinator_releases_the_stored_children(url: str) -> None:
    first = coordinator(url)
    job_id, parent_id = submit(first, items(ITEMS))
    for _ in range(3):
        finish(
            first, next(t.id for t in children(first.writer.store, job_id, parent_id) if t.state is TaskState.SCHEDULED)
        )
    first.writer.store.close()  # the coordinator dies; its memory goes with it

    again = coordinator(url)
    store = again.writer.store
    assert resume_jobs(again) == 1
    # Recovery takes back the live children only, not the stored ones.
    assert sorted(index(t) for t in held(again, parent_id)) == list(range(3, 3 + WINDOW))
    assert run_to_the_end(again, job_id, parent_id, WINDOW) == list(range(3, ITEMS))
    tasks = children(store, job_id, parent_id)
    assert sorted(index(t) for t in tasks) == list(range(ITEMS))  # each child once
    assert by_state(tasks) == {TaskState.COMPLETED: ITEMS}
    store.close()


def test_children_skipped_in_the_batch_that_started_the_each_release_the_next_ones(url: str) -> None:
    # The window's children skip at once (their `if`), in the transaction that stored the rest: those are not
    # in the table yet, and the next ones are released from memory instead, never written twice.
    engine = coordinator(url)
    store = engine.writer.store
    each = items(12)
    each["task"] = {**each["task"], "if": "{{ item.value >= 6 }}"}
    job_id, parent_id = submit(engine, each)
    tasks = children(store, job_id, parent_id)
    assert sorted(index(t) for t in tasks) == list(range(12)), "every child stored once"
    assert sorted(index(t) for t in tasks if t.state is TaskState.SKIPPED) == list(range(6))
    assert scheduled_indexes(store, job_id, parent_id) == list(range(6, 6 + WINDOW))
    assert run_to_the_end(engine, job_id, parent_id, WINDOW) == list(range(6, 12))
    assert by_state(children(store, job_id, parent_id)) == {TaskState.SKIPPED: 6, TaskState.COMPLETED: 6}
    store.close()


def test_a_stored_child_that_cannot_be_evaluated_fails_the_each_at_its_start(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    each = {"list": "{{ sequence(0, 20) }}", "task": {"name": "{{ 100 / (item.value - 17) }}", "run": "true"}}
    job_id, parent_id = submit(engine, each)
    parent = store.get_task(parent_id)
    assert parent is not None and parent.state is TaskState.FAILED and parent.error
    assert store.get_job(job_id).state is JobState.FAILED  # type: ignore[union-attr]
    assert children(store, job_id, parent_id) == []  # nothing created, nothing launched
    store.close()


def test_stored_children_without_an_item_index_are_still_released_in_list_order(url: str) -> None:
    # Rows stored before revision 0005 have no item_index: an each left running then reads them all at once
    # (its coordinator held them all anyway) and releases them in the order of the index in their spec.
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, items(ITEMS))
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE tasks SET item_index = NULL WHERE parent_id = :p"), {"p": parent_id})
    assert run_to_the_end(engine, job_id, parent_id, WINDOW) == list(range(ITEMS))
    store.close()


def test_children_home_in_one_group_commit_release_as_many_others(url: str) -> None:
    # Their results come in one turn of the loop, so one transaction: each releases its own next child, though
    # the ones released before it in that transaction are still CREATED in the table.
    engine = coordinator(url)
    store = engine.writer.store
    job_id, parent_id = submit(engine, items(ITEMS))

    async def all_at_once(ids: list[str]) -> None:
        await asyncio.gather(*(engine.on_result(i, {"result": "done", "nodeId": "n", "startedAt": NOW}) for i in ids))

    for first in range(0, 12, WINDOW):
        waiting = [t for t in children(store, job_id, parent_id) if t.state is TaskState.SCHEDULED]
        assert sorted(index(t) for t in waiting) == list(range(first, first + WINDOW))
        asyncio.run(all_at_once([t.id for t in waiting]))
        assert len(held(engine, parent_id)) == WINDOW
    assert scheduled_indexes(store, job_id, parent_id) == list(range(12, 12 + WINDOW))
    store.close()
