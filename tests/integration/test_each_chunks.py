"""A long each starts a chunk of children at a time (composite.py EACH_CHUNK, each_chunk): each chunk is checked,
then stored, in a transaction and a turn of the coordinator's loop of its own, so other jobs move between the
chunks; nothing is stored if any child cannot be evaluated, and a coordinator that dies in the middle carries on
from what was committed, each child stored once.

The coordinator's own Engine, StateWriter and Store on SQLite and PostgreSQL, on an event loop the test turns;
nothing is launched (no Ray): the test plays the worker, as test_each_window.py does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.engine_alone import idle_engine
from tests.integration.test_each_window import (
    ITEMS,
    KEY,
    WINDOW,
    by_state,
    children,
    coordinator,
    index,
    items,
    run_to_the_end,
    scheduled_indexes,
    submit,
    url,
)
from tork_ray.coordinator import composite
from tork_ray.coordinator.recovery import resume_jobs
from tork_ray.domain.states import JobState, TaskState
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store

__all__ = ["url"]  # the fixture, used by name
CHUNK = 8  # ITEMS (30): checked in 4 chunks, stored in 4, then released up to the WINDOW (4)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(composite, "EACH_CHUNK", CHUNK)
    yield


def stored_mark(store: Store, parent_id: str) -> int:
    """The parent's `each._stored` as committed: the first child not stored yet."""
    parent = store.get_task(parent_id)
    assert parent is not None
    return int(parent.spec["each"]["_stored"])


async def turns_until(store: Store, job_id: str, parent_id: str, done: Any, limit: int = 200) -> list[int]:
    """Turns the loop until `done()`; the `each._stored` marks committed on the way, one per turn."""
    marks = []
    for _ in range(limit):
        if done():
            return marks
        marks.append(stored_mark(store, parent_id))
        await asyncio.sleep(0)
    raise AssertionError("the each's start never ended")


def launched(store: Store, job_id: str, parent_id: str) -> bool:
    return bool(scheduled_indexes(store, job_id, parent_id))


def test_a_long_each_starts_a_chunk_at_a_time_and_another_job_moves_in_between(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store

    async def run() -> tuple[str, str, list[int]]:
        job_id, parent_id = submit(engine, items(ITEMS))
        # Only the first chunk was checked in the submit's transaction: nothing stored, nothing launched.
        assert children(store, job_id, parent_id) == [] and stored_mark(store, parent_id) == 0
        body = {"name": "other", "tasks": [{"name": "o", "run": "true"}]}
        other = engine.submit(parse_job(json.dumps(body).encode(), "application/json"))
        (task,) = store.job_tasks(other.id)
        assert task.state is TaskState.SCHEDULED  # its whole start, while the each's is still under way
        assert children(store, job_id, parent_id) == []
        return (
            job_id,
            parent_id,
            await turns_until(store, job_id, parent_id, lambda: launched(store, job_id, parent_id)),
        )

    job_id, parent_id, marks = asyncio.run(run())
    # Checked over 4 turns, then stored 8 at a time, a commit each (the window's children then released in turns
    # of their own): the marks the table showed on the way.
    assert marks == sorted(marks) and marks.count(0) >= 3, marks
    assert sorted(set(marks)) == [0, CHUNK, 2 * CHUNK, 3 * CHUNK, ITEMS], marks
    assert stored_mark(store, parent_id) == ITEMS
    tasks = children(store, job_id, parent_id)
    assert sorted(index(t) for t in tasks) == list(range(ITEMS))
    assert by_state(tasks) == {TaskState.SCHEDULED: WINDOW, TaskState.CREATED: ITEMS - WINDOW}
    parent = store.get_task(parent_id)
    assert parent is not None and "_stored" not in parent.public()["each"]  # the engine's own mark, not shown
    assert run_to_the_end(engine, job_id, parent_id, WINDOW) == list(range(ITEMS))
    assert by_state(children(store, job_id, parent_id)) == {TaskState.COMPLETED: ITEMS}
    store.close()


def test_a_child_that_cannot_be_evaluated_in_a_late_chunk_fails_the_each_before_anything_is_stored(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store
    each = {"list": "{{ sequence(0, 30) }}", "task": {"name": "{{ 100 / (item.value - 27) }}", "run": "true"}}

    async def run() -> tuple[str, str]:
        job_id, parent_id = submit(engine, each)
        await turns_until(store, job_id, parent_id, lambda: store.get_job(job_id).state is JobState.FAILED)  # type: ignore[union-attr]
        return job_id, parent_id

    job_id, parent_id = asyncio.run(run())
    parent = store.get_task(parent_id)
    assert parent is not None and parent.state is TaskState.FAILED and parent.error
    assert children(store, job_id, parent_id) == []  # nothing created, nothing launched
    store.close()


def test_cancelling_the_job_in_the_middle_of_a_long_each_start_stops_it(url: str) -> None:
    engine = coordinator(url)
    store = engine.writer.store

    async def run() -> tuple[str, str]:
        job_id, parent_id = submit(engine, items(ITEMS))
        await turns_until(store, job_id, parent_id, lambda: stored_mark(store, parent_id) > 0)
        engine.cancel_job(job_id)
        for _ in range(20):  # what was posted before the cancel finds the each CANCELLED and stores no more
            await asyncio.sleep(0)
        return job_id, parent_id

    job_id, parent_id = asyncio.run(run())
    assert store.get_job(job_id).state is JobState.CANCELLED  # type: ignore[union-attr]
    tasks = children(store, job_id, parent_id)
    assert 0 < len(tasks) < ITEMS and by_state(tasks) == {TaskState.CANCELLED: len(tasks)}
    assert engine.composites._starting == {}
    store.close()


@pytest.mark.parametrize("stop_when", ["checking", "storing"])
def test_a_coordinator_that_dies_in_the_middle_of_a_long_each_start_carries_on(url: str, stop_when: str) -> None:
    first = coordinator(url)

    async def until_stopped() -> tuple[str, str]:
        job_id, parent_id = submit(first, items(ITEMS))
        if stop_when == "storing":
            store = first.writer.store
            await turns_until(store, job_id, parent_id, lambda: stored_mark(store, parent_id) > 0)
        return job_id, parent_id  # the loop ends: what it had still to do is gone with it

    # The loop is closed as soon as that returns (asyncio.run would turn it a few more times as it shuts down).
    loop = asyncio.new_event_loop()
    job_id, parent_id = loop.run_until_complete(until_stopped())
    loop.close()
    first.writer.store.close()
    again = coordinator(url)
    store = again.writer.store
    mark = stored_mark(store, parent_id)
    assert (mark == 0) if stop_when == "checking" else (0 < mark < ITEMS), mark
    assert not launched(store, job_id, parent_id)

    async def recover() -> None:
        assert resume_jobs(again) == 1
        await turns_until(store, job_id, parent_id, lambda: launched(store, job_id, parent_id))

    asyncio.run(recover())
    tasks = children(store, job_id, parent_id)
    assert sorted(index(t) for t in tasks) == list(range(ITEMS)), "each child stored once"
    assert run_to_the_end(again, job_id, parent_id, WINDOW) == list(range(ITEMS))
    assert by_state(children(store, job_id, parent_id)) == {TaskState.COMPLETED: ITEMS}
    store.close()


def test_a_window_wider_than_a_chunk_is_released_over_turns_and_topped_up_after_a_restart(url: str) -> None:
    """The window (12) takes two release chunks (8, then 4). A coordinator that died between them left 8 live:
    the next one tops the window up to 12, never past it (simulated: 4 of the 12 made CREATED again)."""
    engine = idle_engine(url, KEY, "window", each_window=12)
    store = engine.writer.store

    async def start() -> tuple[str, str]:
        job_id, parent_id = submit(engine, items(ITEMS))
        await turns_until(store, job_id, parent_id, lambda: len(scheduled_indexes(store, job_id, parent_id)) == 12)
        for _ in range(10):  # nothing more is released than the window
            await asyncio.sleep(0)
        return job_id, parent_id

    job_id, parent_id = asyncio.run(start())
    assert scheduled_indexes(store, job_id, parent_id) == list(range(12))
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE tasks SET state = 'CREATED' WHERE parent_id = :p AND item_index >= 8 AND item_index < 12"),
            {"p": parent_id},
        )
    store.close()
    again = idle_engine(url, KEY, "window", each_window=12)
    store = again.writer.store

    async def recover() -> None:
        assert resume_jobs(again) == 1
        await turns_until(store, job_id, parent_id, lambda: len(scheduled_indexes(store, job_id, parent_id)) == 12)
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(recover())
    assert scheduled_indexes(store, job_id, parent_id) == list(range(12))
    assert by_state(children(store, job_id, parent_id)) == {TaskState.SCHEDULED: 12, TaskState.CREATED: ITEMS - 12}
    store.close()
