"""The UI's SQL on a real SQLite store: job counts per state as a viewer sees them, and the last hour of tasks
(ended per minute, waiting at each minute) derived from the tasks' timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.settings import Settings
from tork_ray.store.auth import Viewer
from tork_ray.store.store import open_store
from tork_ray.store.ui_queries import job_counts, last_hour

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _task(job: Job, state: TaskState, scheduled: int, started: int | None = None, ended: int | None = None) -> Task:
    at = lambda minutes: None if minutes is None else NOW - timedelta(minutes=minutes, seconds=-1)  # noqa: E731
    return Task(
        job_id=job.id,
        position=1,
        state=state,
        scheduled_at=at(scheduled),
        started_at=at(started),
        completed_at=at(ended) if state == TaskState.COMPLETED else None,
        failed_at=at(ended) if state == TaskState.FAILED else None,
    )


def test_counts_and_the_last_hour(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    try:
        open_job = Job(name="open", state=JobState.RUNNING)
        private = Job(name="private", state=JobState.FAILED, permissions=[{"user": "bob"}])
        tasks = [
            _task(open_job, TaskState.COMPLETED, scheduled=30, started=20, ended=10),  # waited 10 min
            _task(open_job, TaskState.FAILED, scheduled=5, started=5, ended=2),
            _task(open_job, TaskState.SCHEDULED, scheduled=3),  # still waiting
            _task(open_job, TaskState.COMPLETED, scheduled=120, started=119, ended=118),  # before the hour
        ]
        store.save(jobs=[open_job, private], tasks=tasks)
        assert job_counts(store, None) == {"RUNNING": 1, "FAILED": 1}
        assert job_counts(store, Viewer("alice", frozenset({"public"}))) == {"RUNNING": 1}
        minutes = last_hour(store, now=NOW)
        assert len(minutes) == 60 and minutes[-1].at == NOW
        ended = {60 - i: m.ended for i, m in enumerate(minutes) if m.ended}
        assert ended == {10: 1, 2: 1}  # minutes ago (the minute each ended in) -> tasks ended
        waiting = [m.waiting for m in minutes]
        assert waiting[60 - 30] == 1 and waiting[60 - 21] == 1 and waiting[60 - 20] == 0
        assert waiting[-1] == 1 and waiting[60 - 3] == 1 and waiting[60 - 4] == 0
    finally:
        store.close()
