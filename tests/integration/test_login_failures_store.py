"""The failed-login buckets every API process shares (store/login_failures.py), on SQLite and PostgreSQL: the
same refill as the in-process limiter, one spend per coordinator call, and only the last window's rows kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.postgres import fresh_database
from tork_ray.store.login_failures import Policy, digest, record_failure, retry_after
from tork_ray.store.login_tables import LoginFailureRow
from tork_ray.store.store import Store

POLICY = Policy(limit=3, window=60.0)  # one failure comes back every 20 s
T0 = 1_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path}/tork.db")
        yield opened
        opened.close()
        return
    with fresh_database("login_failures") as url:
        opened = Store(url)
        yield opened
        opened.close()


def rows(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(LoginFailureRow)).scalar_one())


def test_buckets_refill_over_the_window_and_any_empty_one_holds_the_login(store: Store) -> None:
    ip, user, other = digest("ip:10.0.0.9"), digest("user:alice"), digest("user:bob")
    for n in range(3):
        assert retry_after(store.engine, [ip, user], POLICY, T0 + n) == 0
        record_failure(store.engine, [ip, user], POLICY, f"call-{n}", T0 + n)
    # Three spent by T0+2; 0.1 left at T0+2, a whole one again at T0+20.
    assert retry_after(store.engine, [ip], POLICY, T0 + 2) == 18
    assert retry_after(store.engine, [other, user], POLICY, T0 + 2) == 18  # any empty bucket holds the login
    assert retry_after(store.engine, [other], POLICY, T0 + 2) == 0
    assert retry_after(store.engine, [ip, user], POLICY, T0 + 20.01) == 0
    # Read under other settings (a limit of 100 a minute): the same 0.1 left refills at that rate.
    assert retry_after(store.engine, [ip], Policy(100, 60.0), T0 + 2) == 1
    assert retry_after(store.engine, [ip], Policy(100, 60.0), T0 + 3) == 0


def test_a_repeated_call_spends_once(store: Store) -> None:
    key = [digest("user:carol")]
    for _ in range(5):  # Ray running the same coordinator call again after an actor restart
        record_failure(store.engine, key, POLICY, "call-same", T0)
    assert retry_after(store.engine, key, POLICY, T0) == 0  # 2 of 3 left
    record_failure(store.engine, key, POLICY, "call-2", T0)
    record_failure(store.engine, key, POLICY, "call-3", T0)
    assert retry_after(store.engine, key, POLICY, T0) == 20


def test_full_buckets_are_deleted_as_failures_come_in(store: Store) -> None:
    for n in range(50):  # a run of made-up usernames
        record_failure(store.engine, [digest(f"user:guess-{n}")], POLICY, f"call-{n}", T0)
    assert rows(store) == 50
    # One failure's cost is a third of the window: 20 s later those 50 buckets are full, and go.
    record_failure(store.engine, [digest("user:late")], POLICY, "call-late", T0 + 20.5)
    assert rows(store) == 1
