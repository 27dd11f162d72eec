"""A job saved after a change of its progress alone (state, stamps, position, progress, result, error) writes those
columns, not its document again (store/writes.py JOB_PROGRESS_COLUMNS), and `state` only when it changed; any
other change writes the whole row. What a reader gets back is the same either way: the document, the sealed
result, the search by state. SQLite and PostgreSQL, with an encryption key, over the real write path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from tests.postgres import store_url
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job
from tork_ray.domain.states import JobState
from tork_ray.store.crypto import SEALED
from tork_ray.store.store import Store

KEY = "a key for the job progress write tests"


@pytest.fixture(params=["sqlite", "postgres"])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateWriter]:
    with store_url(request.param, tmp_path, "progress") as url:
        store = Store(url, encryption_key=KEY)
        try:
            yield StateWriter(store)
        finally:
            store.close()


@pytest.fixture
def statements(writer: StateWriter) -> list[str]:
    """Every statement the store sends from now on, lower-cased."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.lower().split()))

    event.listen(writer.store.engine, "before_cursor_execute", record)
    return seen


def _job_writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith(("insert into jobs ", "update jobs "))]


def _started(writer: StateWriter) -> Job:
    job = Job(name="progress", task_count=3, tasks=[{"name": f"t{i}", "run": "true"} for i in range(3)])
    writer.create_job(job)
    writer.move_job(job, JobState.SCHEDULED, position=1)
    return job


def test_a_position_is_written_without_the_document_or_the_state(writer: StateWriter, statements: list[str]) -> None:
    job = _started(writer)
    statements.clear()
    writer.update_job(job, position=2, progress=33.33)
    [write] = _job_writes(statements)
    assert write.startswith("update jobs set") and "doc" not in write and "state" not in write, write
    stored = writer.store.get_job(job.id)
    assert stored is not None and (stored.position, stored.progress) == (2, 33.33)
    assert stored.tasks == job.tasks  # the document as it was written at the creation


def test_a_new_state_is_written_with_the_progress_and_found_by_search(
    writer: StateWriter, statements: list[str]
) -> None:
    job = _started(writer)
    statements.clear()
    writer.move_job(job, JobState.COMPLETED, result="the job's secret result", progress=100.0)
    [write] = _job_writes(statements)
    assert write.startswith("update jobs set state") and "doc" not in write, write
    stored = writer.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.COMPLETED and stored.result == "the job's secret result"
    assert stored.completed_at is not None
    # Sealed as the whole row's write seals it (the column's type), never in clear.
    with writer.store.engine.connect() as connection:
        raw = connection.execute(text("SELECT result FROM jobs WHERE id = :id"), {"id": job.id}).scalar_one()
    assert raw.startswith(SEALED) and "secret" not in raw
    found, total = writer.store.list_jobs(1, 10, q="completed")
    assert total == 1 and [j.id for j in found] == [job.id]


def test_a_change_of_the_document_writes_the_whole_row(writer: StateWriter, statements: list[str]) -> None:
    job = _started(writer)
    statements.clear()
    writer.update_job(job, context={**job.context, "tasks": {"out": "value"}})
    [write] = _job_writes(statements)
    assert write.startswith("insert into jobs") and "doc" in write, write
    stored = writer.store.get_job(job.id)
    assert stored is not None and stored.context == {"tasks": {"out": "value"}}
    statements.clear()
    writer.update_job(job, position=2)  # saved whole once: narrow again
    [write] = _job_writes(statements)
    assert write.startswith("update jobs set") and "doc" not in write, write


def test_a_document_change_rolled_back_with_its_batch_is_not_lost_by_a_narrow_write(
    writer: StateWriter, statements: list[str]
) -> None:
    job = _started(writer)
    with pytest.raises(RuntimeError), writer.batch():
        writer.update_job(job, context={"tasks": {"out": "rolled back"}})
        raise RuntimeError("the event failed")
    assert job.context == {}
    with writer.batch():
        writer.update_job(job, context={"tasks": {"out": "kept"}}, position=2)
    stored = writer.store.get_job(job.id)
    assert stored is not None and stored.context == {"tasks": {"out": "kept"}} and stored.position == 2
