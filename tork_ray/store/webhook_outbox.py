"""The sender's reads and writes of the webhook outbox (never of jobs or tasks: the coordinator owns those)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, delete, select

from tork_ray.store.store import Store
from tork_ray.store.webhook_tables import DELIVERED, FAILED, PENDING, WebhookOutboxRow

BATCH = 1000


@dataclass(frozen=True)
class Call:
    """One pending row, as the sender needs it."""

    id: int
    delivery: str
    job_id: str
    event: str
    url: str
    headers: dict[str, str]
    body: str
    attempts: int


def due_calls(store: Store, now: datetime, busy: Collection[int], limit: int) -> list[Call]:
    """Up to `limit` pending calls that are due, each the oldest pending one of its stream (so a job's events
    reach a webhook in order, one at a time), leaving out those in flight (`busy`). The heads of the streams
    come from the (state, stream, id) index alone."""
    row = WebhookOutboxRow
    heads = select(func.min(row.id)).where(row.state == PENDING).group_by(col(row.stream))
    query = select(row).where(col(row.id).in_(heads), col(row.next_at) <= now).order_by(col(row.id))
    if busy:
        query = query.where(col(row.id).not_in(list(busy)))
    with Session(store.engine) as session:
        return [_call(r) for r in session.exec(query.limit(limit)).all()]


def _call(row: WebhookOutboxRow) -> Call:
    assert row.id is not None
    headers = {str(k): str(v) for k, v in (row.headers or {}).items()}
    return Call(row.id, row.delivery, row.job_id, row.event, row.url, headers, row.body, row.attempts)


def delivered(attempts: int, now: datetime) -> dict[str, Any]:
    return {"state": DELIVERED, "attempts": attempts, "done_at": now, "last_error": None}


def retry_at(attempts: int, next_at: datetime, error: str) -> dict[str, Any]:
    return {"attempts": attempts, "next_at": next_at, "last_error": error}


def given_up(attempts: int, now: datetime, error: str) -> dict[str, Any]:
    return {"state": FAILED, "attempts": attempts, "done_at": now, "last_error": error}


def record(store: Store, changes: list[tuple[int, dict[str, Any]]]) -> None:
    """Applies the outcomes of several calls (id, new values) in one transaction."""
    if not changes:
        return
    with Session(store.engine) as session:
        for call_id, values in changes:
            session.execute(update(WebhookOutboxRow).where(col(WebhookOutboxRow.id) == call_id).values(**values))
        session.commit()


def delete_done_before(store: Store, before: datetime, limit: int = BATCH) -> int:
    """Deletes at most `limit` delivered or given-up calls done before `before` (the sweep repeats until 0)."""
    with Session(store.engine) as session:
        row = WebhookOutboxRow
        ids = select(row.id).where(col(row.state).in_([DELIVERED, FAILED]), col(row.done_at) < before).limit(limit)
        result = session.exec(delete(row).where(col(row.id).in_(ids)))
        session.commit()
        return int(result.rowcount or 0)


def outbox_rows(store: Store, job_id: str | None = None) -> list[WebhookOutboxRow]:
    """Every row (of one job): for tests and tools."""
    with Session(store.engine) as session:
        query = select(WebhookOutboxRow).order_by(col(WebhookOutboxRow.id))
        if job_id is not None:
            query = query.where(WebhookOutboxRow.job_id == job_id)
        return list(session.exec(query).all())
