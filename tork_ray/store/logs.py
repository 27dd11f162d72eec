"""Log part queries: Tork's pages (with search), the neighbours redaction needs, and what a live stream polls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, tuple_
from sqlmodel import Session, col, select

from tork_ray.store.search import SearchDialect, log_part_filters
from tork_ray.store.tables import TaskLogPartRow, TaskRow

# A stream sends at most this many parts per poll, so a task with a huge backlog of log is sent in steps.
STREAM_BATCH = 500


def log_part(row: TaskLogPartRow) -> dict[str, Any]:
    """TaskLogPart as Tork shows it."""
    return {
        "id": row.id,
        "number": row.number,
        "taskId": row.task_id,
        "contents": row.contents,
        "createdAt": row.created_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
    }


def task_log_page(
    session: Session, search: SearchDialect, task_id: str, page: int, size: int, q: str | None
) -> tuple[list[dict[str, Any]], int]:
    """A page of one task's parts, newest first; the total counts every part (it ignores `q`, as Tork's)."""
    total = session.exec(
        select(func.count()).select_from(TaskLogPartRow).where(TaskLogPartRow.task_id == task_id)
    ).one()
    rows = session.exec(
        select(TaskLogPartRow)
        .where(TaskLogPartRow.task_id == task_id, *log_part_filters(search, q, task_id))
        .order_by(col(TaskLogPartRow.number).desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return [log_part(row) for row in rows], int(total)


def job_log_page(
    session: Session, search: SearchDialect, job_id: str, page: int, size: int, q: str | None
) -> tuple[list[dict[str, Any]], int]:
    """Parts of every task of a job: latest task first, then newest part first (Tork's order)."""
    joined = col(TaskRow.id) == col(TaskLogPartRow.task_id)
    total = session.exec(
        select(func.count()).select_from(TaskLogPartRow).join(TaskRow, joined).where(TaskRow.job_id == job_id)
    ).one()
    rows = session.exec(
        select(TaskLogPartRow)
        .join(TaskRow, joined)
        .where(TaskRow.job_id == job_id, *log_part_filters(search, q, None))
        .order_by(col(TaskRow.position).desc(), col(TaskRow.created_at).desc(), col(TaskLogPartRow.number).desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return [log_part(row) for row in rows], int(total)


def neighbour_parts(session: Session, parts: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """Contents of the parts just before and after each given part (same task) that are not among them.

    A secret can straddle two parts (the worker flushes once a second, wherever the text stands); redaction
    looks across each boundary of a page with these.
    """
    have = {(part["taskId"], part["number"]) for part in parts}
    wanted = {(t, n + d) for t, n in have for d in (-1, 1) if n + d >= 1} - have
    if not wanted:
        return {}
    rows = session.exec(
        select(TaskLogPartRow.task_id, TaskLogPartRow.number, TaskLogPartRow.contents).where(
            tuple_(col(TaskLogPartRow.task_id), col(TaskLogPartRow.number)).in_(sorted(wanted))
        )
    ).all()
    return {(task_id, number): contents for task_id, number, contents in rows}


def parts_after(session: Session, task_id: str, after: int, limit: int = STREAM_BATCH) -> list[dict[str, Any]]:
    """Parts of a task numbered above `after`, oldest first."""
    rows = session.exec(
        select(TaskLogPartRow)
        .where(TaskLogPartRow.task_id == task_id, col(TaskLogPartRow.number) > after)
        .order_by(col(TaskLogPartRow.number))
        .limit(limit)
    ).all()
    return [log_part(row) for row in rows]


def job_parts_since(
    session: Session, job_id: str, since: datetime | None, skip: int = 0, limit: int = STREAM_BATCH
) -> list[dict[str, Any]]:
    """Parts of a job's tasks stored at or after `since`, oldest first.

    The coordinator appends parts one at a time, stamping each when it commits it, so `createdAt` order is
    commit order: a reader keeps the last stamp it saw and the ids it saw with it (`skip` widens the batch by
    that many, so a batch always holds something new).
    """
    query = (
        select(TaskLogPartRow)
        .join(TaskRow, col(TaskRow.id) == col(TaskLogPartRow.task_id))
        .where(TaskRow.job_id == job_id)
    )
    if since is not None:
        query = query.where(col(TaskLogPartRow.created_at) >= since)
    rows = session.exec(
        query.order_by(col(TaskLogPartRow.created_at), col(TaskLogPartRow.id)).limit(limit + skip)
    ).all()
    return [{**log_part(row), "_at": row.created_at.replace(tzinfo=UTC)} for row in rows]
