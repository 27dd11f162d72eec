"""The guarded write path over a real SQLite file: applied, ignored (stale) and rejected transitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from tork_ray.coordinator.writer import IllegalTransition, StateWriter
from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.store import Store


@pytest.fixture
def writer(tmp_path: Path) -> StateWriter:
    return StateWriter(Store(f"sqlite:///{tmp_path / 'tork.db'}"))


def running_task(writer: StateWriter) -> tuple[Job, Task]:
    job = Job(name="j", task_count=1)
    writer.create_job(job)
    writer.move_job(job, JobState.SCHEDULED, position=1)
    task = Task(job_id=job.id, position=1, name="t")
    writer.create_tasks([task])
    writer.move_task(task, TaskState.SCHEDULED)
    writer.move_task(task, TaskState.RUNNING, node_id="n1")
    return job, task


def test_a_completion_after_a_cancel_changes_nothing(writer: StateWriter) -> None:
    _job, task = running_task(writer)
    assert writer.move_task(task, TaskState.CANCELLED)
    assert not writer.move_task(task, TaskState.COMPLETED, result="late")
    stored = writer.store.get_task(task.id)
    assert stored is not None and stored.state is TaskState.CANCELLED and stored.result is None


def test_timestamps_are_stamped_once(writer: StateWriter) -> None:
    job, task = running_task(writer)
    stored = writer.store.get_task(task.id)
    assert stored is not None and stored.scheduled_at and stored.started_at and stored.node_id == "n1"
    assert writer.move_task(task, TaskState.COMPLETED, result="ok")
    assert writer.store.get_task(task.id).completed_at is not None  # type: ignore[union-attr]
    assert writer.store.get_job(job.id).started_at is not None  # type: ignore[union-attr]


def test_a_cancelled_job_stays_cancelled(writer: StateWriter) -> None:
    job, _task = running_task(writer)
    assert writer.move_job(job, JobState.CANCELLED)
    assert not writer.move_job(job, JobState.FAILED, error="late failure")
    stored = writer.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.CANCELLED and stored.error is None


def test_an_impossible_transition_is_a_bug(writer: StateWriter) -> None:
    job = Job(name="j")
    writer.create_job(job)
    with pytest.raises(IllegalTransition):
        writer.move_job(job, JobState.COMPLETED)


def test_finished_work_leaves_the_cache_but_is_still_readable(writer: StateWriter) -> None:
    job, task = running_task(writer)
    writer.move_task(task, TaskState.COMPLETED)
    writer.move_job(job, JobState.COMPLETED)
    assert writer.job(job.id) is not None and writer.job(job.id).state is JobState.COMPLETED  # type: ignore[union-attr]
    assert writer.active_tasks(job.id) == []


def test_a_batch_is_stored_whole_at_its_end_and_readable_before(writer: StateWriter) -> None:
    job = Job(name="batched", task_count=1)
    with writer.batch():
        writer.create_job(job)
        writer.move_job(job, JobState.SCHEDULED, position=1)
        task = Task(job_id=job.id, position=1, name="t")
        writer.create_tasks([task])
        assert writer.store.get_job(job.id) is None  # nothing written yet
        assert [t.id for t in writer.job_tasks(job.id)] == [task.id]  # but the writer sees it all
        writer.move_task(task, TaskState.CANCELLED)
        writer.move_job(job, JobState.CANCELLED)
        assert writer.job(job.id) is job  # a finished job not yet stored is still the live object
    stored = writer.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.CANCELLED
    assert [t.state for t in writer.store.job_tasks(job.id)] == [TaskState.CANCELLED]


def test_a_failing_handler_stores_nothing(writer: StateWriter) -> None:
    job = Job(name="interrupted")
    with pytest.raises(IllegalTransition), writer.batch():
        writer.create_job(job)
        writer.move_job(job, JobState.COMPLETED)  # PENDING -> COMPLETED: a bug
    assert writer.store.get_job(job.id) is None
    assert writer.job(job.id) is None


def test_a_new_job_and_task_are_inserted_without_looking_them_up_first(writer: StateWriter) -> None:
    statements: list[str] = []
    event.listen(writer.store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    job = Job(name="fresh", tags=["t1"], task_count=1)
    writer.create_job(job)
    writer.create_tasks([Task(job_id=job.id, position=1, name="t")])
    assert statements and not [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # What the lookup also decided still happens: the row is stored and its tags are written.
    writer.move_job(job, JobState.SCHEDULED, position=1)
    assert writer.store.state_counts()["jobs"] == {"SCHEDULED": 1}
    assert [j.id for j in writer.store.list_jobs(1, 10, "tag:t1")[0]] == [job.id]


def test_a_job_loaded_from_the_store_is_looked_up_before_it_is_saved(tmp_path: Path) -> None:
    # Only rows the writer creates skip the lookup: after a restart, the stored state is the previous one.
    url = f"sqlite:///{tmp_path / 'tork.db'}"
    first = StateWriter(Store(url))
    job = Job(name="stored", tags=["t1"], task_count=1)
    first.create_job(job)
    restarted = StateWriter(Store(url))
    loaded = restarted.job(job.id)
    assert loaded is not None
    statements: list[str] = []
    event.listen(restarted.store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    restarted.move_job(loaded, JobState.SCHEDULED, position=1)
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert not [s for s in statements if "jobs_tags" in s.lower()]  # known job: its tags are not written again


def refuse_tasks_named(store: Store, name: str) -> None:
    """A real fault in the real database: SQLite aborts any insert of a task with this name."""
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TRIGGER refuse_{name} BEFORE INSERT ON tasks WHEN NEW.name = '{name}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
        )


def test_a_failing_event_puts_the_live_records_and_caches_back(writer: StateWriter) -> None:
    job, task = running_task(writer)
    child = Task(job_id=job.id, parent_id=task.id, position=1, name="child")
    writer.create_tasks([child])
    with pytest.raises(IllegalTransition), writer.batch():
        writer.update_job(job, context={"tasks": {"a": "1"}}, position=2)
        writer.move_task(task, TaskState.COMPLETED, result="half")
        writer.move_task(child, TaskState.CANCELLED)
        writer.create_tasks([Task(job_id=job.id, position=2, name="next")])
        writer.move_job(job, JobState.PENDING)  # RUNNING -> PENDING: a bug, half-way through the event
    # Memory: the same objects, as they were; the caches as they were.
    assert job.state is JobState.SCHEDULED and job.position == 1 and job.context == {}
    assert task.state is TaskState.RUNNING and task.result is None and task.completed_at is None
    assert writer.task(task.id) is task and writer.children(task.id) == [child]
    assert [t.name for t in writer.active_tasks(job.id)] == ["t", "child"]
    # Store: nothing of the event.
    stored = writer.store.get_task(task.id)
    assert stored is not None and stored.state is TaskState.RUNNING
    assert [t.name for t in writer.store.job_tasks(job.id)] == ["t", "child"]
    # And the writer carries on: the next event is stored whole.
    with writer.batch():
        writer.move_task(task, TaskState.COMPLETED, result="ok")
    assert writer.store.get_task(task.id).result == "ok"  # type: ignore[union-attr]


def test_a_commit_the_database_refuses_rolls_memory_back(writer: StateWriter) -> None:
    job, task = running_task(writer)
    refuse_tasks_named(writer.store, "refused")
    effects: list[str] = []
    with pytest.raises(Exception, match="refused by a test trigger"), writer.batch():
        writer.move_task(task, TaskState.COMPLETED, result="done")
        writer.update_job(job, position=2)
        writer.create_tasks([Task(job_id=job.id, position=2, name="refused")])
        writer.after_commit(lambda: effects.append("launched"))
    assert effects == []  # nothing leaves the coordinator for a change that was not stored
    assert task.state is TaskState.RUNNING and job.position == 1
    assert writer.store.get_task(task.id).state is TaskState.RUNNING  # type: ignore[union-attr]
    assert writer.store.get_job(job.id).position == 1  # type: ignore[union-attr]
    # The states the row writer remembers were not moved by the failed save: the next one counts right.
    assert writer.move_task(task, TaskState.COMPLETED, result="done")
    assert writer.store.state_counts()["tasks"] == {"COMPLETED": 1}


def test_effects_run_in_order_once_the_batch_is_stored(writer: StateWriter) -> None:
    job = Job(name="effects")
    seen: list[tuple[str, bool]] = []
    with writer.batch():
        writer.create_job(job)
        writer.after_commit(lambda: seen.append(("first", writer.store.get_job(job.id) is not None)))
        writer.after_commit(lambda: seen.append(("second", True)))
        assert seen == []
    assert seen == [("first", True), ("second", True)]


def test_a_store_made_before_redelivery_counts_gains_the_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = StateWriter(Store(url))
    _job, task = running_task(old)
    with old.store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE tasks DROP COLUMN redelivered")
        connection.exec_driver_sql("DROP TABLE alembic_version")  # made before migrations existed
    reopened = Store(url)
    loaded = reopened.get_task(task.id)
    assert loaded is not None and loaded.redelivered == 0
