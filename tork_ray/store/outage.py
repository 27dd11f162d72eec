"""The store out of reach: which errors say so, a bounded wait-and-retry, and commits whose outcome is unknown."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from tork_ray.errors import Unavailable
from tork_ray.spec.units import parse_duration
from tork_ray.store.retry_settings import StoreRetrySettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailable(Unavailable):
    """The store stayed out of reach (503): the request or event was rolled back whole, nothing half-stored."""


class CommitUnknown(OperationalError):
    """The connection died during COMMIT: the transaction may or may not be stored. `status()` asks the
    server (on a new connection) once it answers again; `then()` finishes what the committer does after a
    commit, should it turn out to have gone through."""

    def __init__(self, cause: DBAPIError, status: Callable[[], str | None], then: Callable[[], Any]) -> None:
        super().__init__(str(cause.statement), cause.params, cause.orig or cause, connection_invalidated=True)
        self.status = status
        self.then = then


def is_outage(exc: BaseException) -> bool:
    """True for a store that cannot be reached or is not usable right now (connection refused or lost, server
    shutting down, SQLite locked or read-only): waiting may help. False for a bad statement, a broken
    constraint or a bug, which no wait will fix."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if isinstance(exc.orig, sqlite3.OperationalError):
        # SQLite raises OperationalError for a missing table or column too: only these are worth waiting out.
        return any(sign in str(exc.orig).lower() for sign in _SQLITE_TRANSIENT)
    return True


# SQLite's messages for a database it cannot use right now (locked by another writer, unreadable, read-only).
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o", "readonly", "read-only")


def reason(exc: BaseException) -> str:
    """One line saying why the store is out of reach (the driver's message, never a statement or values)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:300]


def unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"the store is unavailable: {reason(exc)}")


class StoreRetry:
    """Calls a store operation until it succeeds, waiting (with backoff) while the store is out of reach, at
        most `timeout` seconds; errors that are not an outage go through at once. Blocking on purpose: used where
        order matters more than the thread (the coordinator's one writer, its log-part thread). Past the timeout it
    calls `on_give_up(what, error)` (the coordinator's: end the process, coordinator/outage_exit.py), then raises
    StoreUnavailable."""

    def __init__(
        self,
        settings: StoreRetrySettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_give_up: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        settings = settings or StoreRetrySettings()
        self.timeout = parse_duration(settings.timeout)
        self.first = parse_duration(settings.delay)
        self.most = max(parse_duration(settings.max_delay), self.first)
        self._sleep, self._clock = sleep, clock
        self._on_give_up = on_give_up
        self.waits = 0  # failed tries so far, over the life of this instance (figures, tests)

    def __call__(self, operation: Callable[[], T], what: str = "a store write") -> T:
        deadline = self._clock() + self.timeout
        delay = self.first
        unknown: CommitUnknown | None = None
        while True:
            try:
                if unknown is not None:  # first learn whether the last try was stored after all
                    status = unknown.status()
                    if status == "committed":
                        log.warning("%s: the commit cut off by the outage went through", what)
                        return unknown.then()
                    if status == "in progress":
                        raise unknown
                    unknown = None  # aborted (or forgotten by the server): not stored, so try again
                return operation()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if isinstance(exc, CommitUnknown):
                    unknown = exc
                self.waits += 1
                if self._clock() + delay > deadline:
                    log.error("%s: the store stayed out of reach for %.1fs: %s", what, self.timeout, reason(exc))
                    if self._on_give_up is not None:
                        self._on_give_up(what, exc)
                    raise unavailable(exc) from exc
                log.warning("%s: the store is out of reach (%s); trying again in %.2fs", what, reason(exc), delay)
                self._sleep(delay)
                delay = min(delay * 2, self.most)


def no_retry(operation: Callable[[], T], what: str = "") -> T:
    """The store's default: one try (the API's reads answer 503 at once rather than wait)."""
    return operation()


@contextmanager
def transaction(engine: Engine, then: Callable[[], Any]) -> Iterator[Connection]:
    """engine.begin(), except that a commit cut off by a lost connection raises CommitUnknown: on PostgreSQL the
    transaction's id is taken first, so whether it was stored can be asked afterwards (pg_xact_status); a
    retry must not store it twice. SQLite commits locally: a failed commit there was not stored."""
    with engine.connect() as connection:
        xid = None
        if engine.dialect.name == "postgresql":
            xid = connection.execute(text("SELECT pg_current_xact_id()::text")).scalar_one()
        yield connection
        try:
            connection.commit()
        except DBAPIError as exc:
            if xid is None or not is_outage(exc):
                raise
            raise CommitUnknown(exc, lambda: _xact_status(engine, str(xid)), then) from exc


def _xact_status(engine: Engine, xid: str) -> str | None:
    """'committed', 'aborted', 'in progress', or None when the server no longer knows (long ago: not ours)."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": xid}).scalar_one()
