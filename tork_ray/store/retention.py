"""Retention queries: jobs past their deleteAt or older than the retention period, and old log parts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, or_, select

from tork_ray.domain.states import JOB_TERMINAL
from tork_ray.store.store import Store
from tork_ray.store.tables import JobRow, TaskLogPartRow

BATCH = 1000


def expired_job_ids(store: Store, now: datetime, jobs_older_than: datetime, limit: int = BATCH) -> list[str]:
    """Jobs to delete: their deleteAt has passed, or they ended before `jobs_older_than`."""
    ended = col(JobRow.state).in_([state.value for state in JOB_TERMINAL])
    with Session(store.engine) as session:
        rows = session.exec(
            select(JobRow.id)
            .where(
                or_(
                    col(JobRow.delete_at) < now,
                    ended & (col(JobRow.created_at) < jobs_older_than),
                )
            )
            .limit(limit)
        ).all()
        return list(rows)


def delete_log_parts_before(store: Store, before: datetime, limit: int = BATCH) -> int:
    """Deletes at most `limit` log parts older than `before` (a batch: the caller repeats until 0)."""
    with Session(store.engine) as session:
        ids = select(TaskLogPartRow.id).where(col(TaskLogPartRow.created_at) < before).limit(limit)
        result = session.exec(delete(TaskLogPartRow).where(col(TaskLogPartRow.id).in_(ids)))
        session.commit()
        return int(result.rowcount or 0)
