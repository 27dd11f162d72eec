"""Request ids: a coordinator call Ray retries (or a client repeats) finds the change it already made."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tork_ray.domain.models import utcnow
from tork_ray.errors import TorkError
from tork_ray.store.store import Store

# How long a request id is remembered: far longer than any retry of a call, short enough to keep the table small.
REQUEST_TTL = timedelta(hours=24)
TABLE = "requests"


class KeyReused(TorkError):
    """An Idempotency-Key sent again with a different request."""

    status_code = 409


def request_row(request_id: str, kind: str, job_id: str, fingerprint: str = "") -> dict[str, Any]:
    return {"id": request_id, "kind": kind, "job_id": job_id, "fingerprint": fingerprint, "created_at": utcnow()}


def applied_job(store: Store, request_id: str | None, kind: str, fingerprint: str = "") -> str | None:
    """The job id the request `request_id` already acted on, or None if it is new. The same id with a
    different kind or body is refused: a client reused its key for another request."""
    if not request_id:
        return None
    row = store.get_request(request_id)
    if row is None:
        return None
    if row.kind != kind or row.fingerprint != fingerprint:
        raise KeyReused("Idempotency-Key was already used for a different request")
    return row.job_id
