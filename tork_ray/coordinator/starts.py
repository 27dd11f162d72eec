"""Starts reported late or with results (worker/start_report.py): which tasks may wait, and the worker's clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tork_ray.domain.models import Task, utcnow


class StartDelays:
    """How long each task's worker holds its start report back (RunRequest.start_report_delay): the
    worker.start_report_delay setting, or 0 (at once, as a start that nothing may miss) for a task that must
    never run twice (a limit of 0 redeliveries), for one already redelivered, and for one recovery requeued
    though it may have run (see Engine.requeue), so that from its next run on a restart finds it RUNNING and
    counts a redelivery. A restart can thus run a task again unnoticed once at most, before its first
    redelivery: it runs at most `redeliveries` + 2 times however often the engine dies while it runs (but for
    the instant a start report takes to be stored, a window every start had before start reports waited)."""

    def __init__(self, delay: float, redeliveries_of: Callable[[Task], int]) -> None:
        self.delay = delay
        self._redeliveries_of = redeliveries_of
        self._at_once: set[str] = set()  # in memory: a restart requeues (and marks) them again

    def at_once(self, task_id: str) -> None:
        self._at_once.add(task_id)

    def ended(self, task_id: str) -> None:
        self._at_once.discard(task_id)

    def delay_of(self, task: Task) -> float:
        if self.delay <= 0 or task.redelivered or task.id in self._at_once or self._redeliveries_of(task) == 0:
            return 0.0
        return self.delay


def worker_time(text: str, scheduled_at: datetime | None) -> datetime:
    """A worker's timestamp, kept within [scheduled_at, now] on the coordinator's clock: a node whose clock is
    off must not make a task start before it was scheduled or after it is recorded."""
    now = utcnow()
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return now
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=now.tzinfo)
    if scheduled_at is not None and stamp < scheduled_at:
        return scheduled_at
    return min(stamp, now)
