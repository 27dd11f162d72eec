"""The engine's events over a real SQLite store (no Ray: these jobs never reach a queue)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_writer import refuse_tasks_named
from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.recovery import STUCK_JOB_ERROR, resume_jobs
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.models import JobInput
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store


def no_launch(request: RunRequest, resource: str) -> Any:
    raise AssertionError(f"nothing here should reach Ray, but {request.task_id} did")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(StateWriter(Store(f"sqlite:///{tmp_path / 'tork.db'}")), no_launch, scope="unit")


def spec(*tasks: dict[str, Any]) -> JobInput:
    return parse_job(json.dumps({"name": "j", "tasks": list(tasks)}).encode(), "application/json")


def test_an_event_that_fails_half_way_is_rolled_back_and_fails_its_job(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = engine.writer.store
    refuse_tasks_named(store, "second")
    job = engine.create_job(spec({"name": "first", "if": "false"}, {"name": "second", "if": "false"}))
    with caplog.at_level(logging.ERROR), pytest.raises(Exception, match="refused by a test trigger"):
        engine.start(job)
    stored = store.get_job(job.id)
    assert stored is not None and stored.state is JobState.FAILED
    assert stored.error is not None
    assert stored.error.startswith(f"coordinator error while handling the start of job {job.id}")
    assert "refused by a test trigger" in stored.error
    assert store.job_tasks(job.id) == []  # the first task's SKIPPED was part of the failed event: not stored
    assert job.state is JobState.FAILED  # the live record too, not only the stored one
    assert any("coordinator error while handling" in record.getMessage() for record in caplog.records)


def test_ten_thousand_skipped_tasks_are_one_transaction(engine: Engine) -> None:
    job = engine.submit(spec(*[{"name": "s", "if": "false"} for _ in range(10_000)]))
    stored = engine.writer.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.COMPLETED and stored.position == 10_001
    assert engine.writer.store.state_counts()["tasks"] == {"SKIPPED": 10_000}


SKIPPED_CHAIN = [{"name": "s", "if": "false"} for _ in range(2_000)]
SKIPPED_EACH = [{"name": "e", "each": {"list": "{{ sequence(0, 2000) }}", "task": {"name": "i", "if": "false"}}}]


@pytest.mark.parametrize("tasks", [SKIPPED_CHAIN, SKIPPED_EACH], ids=["chain", "each"])
def test_a_long_event_on_the_loop_commits_in_chunks_and_gives_the_loop_back(
    engine: Engine, tasks: list[dict[str, Any]]
) -> None:
    # On the coordinator's loop, 2,000 skips are not one stretch: the submit returns once a chunk is stored,
    # other callbacks run between chunks, and the job still completes with every task skipped exactly once.
    store = engine.writer.store

    async def run() -> tuple[JobState, int]:
        job = engine.submit(spec(*tasks))
        stored = store.get_job(job.id)
        assert stored is not None
        first = stored.state
        turns = 0
        while job.state is not JobState.COMPLETED:
            await asyncio.sleep(0)  # another callback's turn
            turns += 1
            assert turns < 1_000, "the job did not complete"
        return first, turns

    first, turns = asyncio.run(run())
    assert first is JobState.SCHEDULED  # the first chunk was committed, the job not finished with it
    assert turns >= 2
    assert store.state_counts()["tasks"]["SKIPPED"] == 2_000
    assert store.state_counts()["jobs"] == {"COMPLETED": 1}


def test_recovery_fails_a_running_job_with_nothing_left_to_run(engine: Engine) -> None:
    # What a half-stored event of an older version left behind: the task completed, the job never moved on.
    writer = engine.writer
    job = Job(name="stuck", task_count=2, tasks=[{"name": "a"}, {"name": "b"}])
    writer.create_job(job)
    writer.move_job(job, JobState.SCHEDULED, position=1)
    writer.move_job(job, JobState.RUNNING)
    task = Task(job_id=job.id, position=1, name="a")
    writer.create_tasks([task])
    writer.move_task(task, TaskState.SCHEDULED)
    writer.move_task(task, TaskState.COMPLETED)
    restarted = Engine(StateWriter(Store(writer.store.url)), no_launch, scope="unit")
    assert resume_jobs(restarted) == 1
    stored = writer.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.FAILED and stored.error == STUCK_JOB_ERROR


def test_a_job_id_chosen_by_the_caller_is_the_jobs_id_everywhere(engine: Engine) -> None:
    # A router that picks a coordinator shard by job id makes the id before the job exists (docs/scaling.md).
    chosen = "0123456789abcdef0123456789abcdef"
    job = engine.submit(spec({"name": "s", "if": "false"}), job_id=chosen)
    stored = engine.writer.store.get_job(chosen)
    assert job.id == chosen and stored is not None and stored.state is JobState.COMPLETED
    assert stored.context["job"]["id"] == chosen  # what {{ job.id }} renders
    assert [task.job_id for task in engine.writer.store.job_tasks(chosen)] == [chosen]
    assert engine.submit(spec({"name": "s", "if": "false"})).id != chosen  # without one, a new id as before
