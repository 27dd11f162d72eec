"""StoreRetry on real stores: a locked SQLite database is waited out; a commit cut off on PostgreSQL is asked
about (pg_xact_status) and never stored twice; an error that is not an outage is not retried."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.postgres import fresh_database
from tork_ray.store.outage import (
    CommitUnknown,
    StoreRetry,
    StoreRetrySettings,
    StoreUnavailable,
    is_outage,
    transaction,
)


def _retry(sleep: Any, timeout: str = "10s") -> StoreRetry:
    return StoreRetry(StoreRetrySettings(timeout=timeout, delay="10ms", max_delay="40ms"), sleep=sleep)


def test_a_locked_sqlite_database_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})  # no busy wait of SQLite's own
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's long write
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the lock goes once the retry has met it twice
        waits.append(seconds)
        if len(waits) == 2:
            holder.execute("COMMIT")

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    _retry(sleep)(write)
    print(f"waits before the lock went: {waits}")
    assert waits == [0.01, 0.02]  # backoff doubles
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    holder.close()


def test_an_outage_longer_than_the_timeout_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    retry = StoreRetry(StoreRetrySettings(timeout="1s", delay="100ms", max_delay="400ms"), sleep, lambda: clock[0])

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    with pytest.raises(StoreUnavailable) as refused:
        retry(write)
    print(f"refused after {clock[0]:.1f}s of waits: {refused.value.message}")
    assert refused.value.status_code == 503
    assert refused.value.message == "the store is unavailable: OperationalError: database is locked"
    assert clock[0] <= 1.0
    holder.close()


def test_errors_that_are_not_an_outage_go_through_at_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))

    def duplicate() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    slept: list[float] = []
    with pytest.raises(IntegrityError) as raised:
        _retry(slept.append)(duplicate)
    assert not is_outage(raised.value) and slept == []


def _cut_off(status: str, then: Any) -> CommitUnknown:
    cause = OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
    return CommitUnknown(cause, lambda: status, then)


@pytest.mark.parametrize(("status", "tries"), [("committed", 1), ("aborted", 2)])
def test_a_commit_cut_off_is_resolved_before_any_new_try(status: str, tries: int) -> None:
    calls: list[str] = []

    def save() -> str:
        calls.append("save")
        if len(calls) == 1:
            raise _cut_off(status, lambda: "finished after the commit")
        return "saved again"

    answer = _retry(lambda _s: None)(save)
    # Stored after all: not saved a second time, only finished. Not stored: saved again.
    assert len(calls) == tries
    assert answer == ("finished after the commit" if status == "committed" else "saved again")


def test_a_postgresql_commit_cut_off_is_asked_about_and_stored_once() -> None:
    with fresh_database("tork_xact") as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
        cut: list[CommitUnknown] = []

        def save() -> None:
            try:
                with transaction(engine, lambda: None) as connection:
                    connection.execute(text("INSERT INTO t VALUES (1)"))
                    if not cut:  # the server ends this session before its COMMIT (a failover, a restart)
                        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
                        with engine.connect() as other:
                            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            except CommitUnknown as exc:
                cut.append(exc)
                raise

        _retry(lambda _s: None)(save)
        assert len(cut) == 1 and cut[0].status() == "aborted"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        engine.dispose()
