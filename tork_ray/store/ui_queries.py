"""Read-only SQL for the web UI: job counts per state as a caller sees them, and the last hour of task flow.

The history behind the UI's charts is derived from the tasks' own timestamps (scheduled, started, ended), so
it needs no sampler and is the same from any API process: tasks/s = tasks ended per minute, queue depth at a
minute = tasks scheduled by then and not yet started (or ended without starting)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from tork_ray.domain.states import TaskState
from tork_ray.store.auth import Viewer, visible_clause
from tork_ray.store.store import Store
from tork_ray.store.tables import JobRow, TaskRow

HISTORY_ROWS = 50_000  # at most this many tasks read for one chart: a very busy hour is charted from a sample


def job_counts(store: Store, viewer: Viewer | None) -> dict[str, int]:
    """Jobs per state, only those `viewer` may see (all with None)."""
    where = [visible_clause(viewer)] if viewer is not None else []
    with Session(store.engine) as session:
        rows = session.exec(select(JobRow.state, func.count()).where(*where).group_by(col(JobRow.state))).all()
    return {str(state): int(n) for state, n in rows}


@dataclass(frozen=True)
class Minute:
    at: datetime
    ended: int  # tasks that completed or failed in this minute
    waiting: int  # tasks scheduled and not started at the minute's end


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def last_hour(store: Store, now: datetime | None = None, minutes: int = 60) -> list[Minute]:
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=minutes)
    waiting = (TaskState.PENDING.value, TaskState.SCHEDULED.value)
    with Session(store.engine) as session:
        rows = session.exec(
            select(TaskRow.scheduled_at, TaskRow.started_at, TaskRow.completed_at, TaskRow.failed_at)
            .where(
                or_(
                    col(TaskRow.completed_at) >= since,
                    col(TaskRow.failed_at) >= since,
                    col(TaskRow.started_at) >= since,
                    col(TaskRow.state).in_(waiting),
                )
            )
            .limit(HISTORY_ROWS)
        ).all()
    marks = [since + timedelta(minutes=i + 1) for i in range(minutes)]
    ended = [0] * minutes
    change = [0] * (minutes + 1)  # a difference array: +1 where a task starts waiting, -1 where it stops
    for scheduled, started, completed, failed in rows:
        end = _aware(completed or failed)
        if end is not None and end >= since:
            ended[min(int((end - since).total_seconds() // 60), minutes - 1)] += 1
        queued = _aware(scheduled)
        if queued is None:
            continue
        first = _mark_index(queued, since, minutes)  # the first minute mark at or after it was queued
        left = _aware(started) or end
        last = _mark_index(left, since, minutes) if left is not None else minutes  # marks before it left
        if first < last:
            change[first] += 1
            change[last] -= 1
    waiting_at, level = [], 0
    for step in change[:minutes]:
        level += step
        waiting_at.append(level)
    return [Minute(at, n, w) for at, n, w in zip(marks, ended, waiting_at, strict=True)]


def _mark_index(moment: datetime, since: datetime, minutes: int) -> int:
    """Index of the first minute mark (since + (i+1) min) at or after `moment`, within [0, minutes]."""
    seconds = (moment - since).total_seconds()
    index = -(-seconds // 60) - 1  # ceil(seconds / 60) - 1
    return int(min(max(index, 0), minutes))
