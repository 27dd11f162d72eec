"""Failed logins counted in the store, so that every API process (each Serve replica) enforces one limit:
the API reads the buckets before each login, the coordinator (the store's one writer) spends them on a failure.

A bucket holds `limit` failures and refills at `limit` per `window` seconds, as the in-process FailureLimiter
(api/login_limit.py). Times are Unix seconds: the replicas and the coordinator share the head's clock."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update
from sqlmodel import col

from tork_ray.store.login_tables import LoginFailureRow


@dataclass(frozen=True)
class Policy:
    limit: int  # auth.failures.limit
    window: float  # auth.failures.window, in seconds

    @property
    def rate(self) -> float:
        return self.limit / self.window  # failures regained per second

    def left(self, left: float, updated: float, now: float) -> float:
        """Failures left now in a bucket that had `left` at `updated` (a bucket of other settings is clamped)."""
        return min(float(self.limit), left + max(now - updated, 0.0) * self.rate)


def digest(key: str) -> str:
    """The stored name of a bucket ("ip:<address>", "user:<username>"): bounded, and no username in clear."""
    return hashlib.sha256(key.encode()).hexdigest()


def retry_after(engine: Engine, digests: Collection[str], policy: Policy, now: float | None = None) -> int:
    """0 when every bucket has a failure left, else the whole seconds until all of them have (one indexed read)."""
    now = time.time() if now is None else now
    with engine.connect() as connection:
        rows = connection.execute(
            select(col(LoginFailureRow.left), col(LoginFailureRow.updated)).where(col(LoginFailureRow.key).in_(digests))
        ).all()
    wait = max(((1.0 - policy.left(row.left, row.updated, now)) / policy.rate for row in rows), default=0.0)
    return math.ceil(wait) if wait > 0 else 0


def record_failure(
    engine: Engine, digests: Collection[str], policy: Policy, call_id: str, now: float | None = None
) -> None:
    """Spends one failure from each bucket, in one transaction; buckets full again are deleted on the way (the
    table holds only the failures of the last window). A repeated `call_id` (Ray retrying the call) spends none."""
    now = time.time() if now is None else now
    with engine.begin() as connection:
        connection.execute(delete(LoginFailureRow).where(col(LoginFailureRow.full_at) < now))
        for key in sorted(set(digests)):  # one order: writers never wait on each other in a circle
            row = connection.execute(
                select(LoginFailureRow).where(col(LoginFailureRow.key) == key).with_for_update()
            ).first()
            if row is not None and row.last_call == call_id:
                continue
            before = policy.left(row.left, row.updated, now) if row is not None else float(policy.limit)
            left = max(before - 1.0, 0.0)
            full_at = now + (policy.limit - left) / policy.rate
            values = {"left": left, "updated": now, "full_at": full_at, "last_call": call_id}
            if row is None:
                connection.execute(insert(LoginFailureRow).values(key=key, **values))
            else:
                connection.execute(update(LoginFailureRow).where(col(LoginFailureRow.key) == key).values(**values))
