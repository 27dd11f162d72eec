"""Which errors are an outage (waited out) and which are not (failed at once); the datastore.retry settings."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import requests
from docker.errors import DockerException
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from tork_ray.coordinator.outage_exit import give_up_handler, open_store_when_back
from tork_ray.errors import BadRequest
from tork_ray.runtime.docker_daemon import daemon_gone
from tork_ray.settings import Settings, load_settings
from tork_ray.store.outage import StoreRetry, StoreRetrySettings, StoreUnavailable, is_outage, reason


def test_store_errors_that_waiting_may_cure_are_outages() -> None:
    refused = OperationalError("SELECT 1", {}, Exception("connection refused\nDETAIL: more"))
    assert is_outage(refused)
    assert reason(refused) == "Exception: connection refused"  # one line, the driver's words, no statement
    assert is_outage(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))


@pytest.mark.parametrize("error", [IntegrityError, ProgrammingError])
def test_store_errors_no_wait_cures_are_not(error: type[DBAPIError]) -> None:
    assert not is_outage(error("INSERT", {}, Exception("duplicate key")))
    assert not is_outage(ValueError("a bug"))


def test_sqlite_errors_are_outages_only_when_the_database_is_unusable_for_now() -> None:
    def sqlite_error(message: str) -> OperationalError:
        return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    assert is_outage(sqlite_error("database is locked"))
    assert is_outage(sqlite_error("unable to open database file"))
    assert is_outage(sqlite_error("attempt to write a readonly database"))
    assert not is_outage(sqlite_error("no such table: jobs"))  # a bug or a broken schema: no wait cures it
    assert not is_outage(sqlite_error("no such column: jobs.nope"))


def test_a_docker_socket_gone_is_told_from_a_slow_wait() -> None:
    gone = requests.exceptions.ConnectionError(("Connection aborted.", FileNotFoundError(2, "No such file")))
    assert daemon_gone(gone)
    assert not daemon_gone(requests.exceptions.ReadTimeout("Read timed out. (read timeout=1)"))
    assert not daemon_gone(requests.exceptions.ConnectionError("UnixHTTPConnectionPool: ReadTimeoutError(...)"))
    assert daemon_gone(DockerException("Error while fetching server API version: ('Connection aborted.', ...)"))
    assert not daemon_gone(DockerException("some other SDK error"))


def test_datastore_retry_settings() -> None:
    settings = load_settings({"TORK_DATASTORE_RETRY_TIMEOUT": "5s", "TORK_DATASTORE_RETRY_MAX_DELAY": "1s"})
    assert settings.store_retry == StoreRetrySettings(timeout="5s", delay="100ms", max_delay="1s")
    with pytest.raises(BadRequest, match=r"datastore\.retry\.timeout"):
        load_settings({"TORK_DATASTORE_RETRY_TIMEOUT": "soon"})
    with pytest.raises(BadRequest, match=r"datastore\.retry\.delay must not be negative"):
        load_settings({"TORK_DATASTORE_RETRY_DELAY": "-1s"})
    assert load_settings({"TORK_DATASTORE_SQLITE_BUSY_TIMEOUT": "200ms"}).datastore.sqlite_busy_timeout == "200ms"
    assert load_settings({}).datastore.sqlite_busy_timeout == "30s"
    with pytest.raises(BadRequest, match=r"datastore\.sqlite\.busy\.timeout"):
        load_settings({"TORK_DATASTORE_SQLITE_BUSY_TIMEOUT": "a while"})


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_a_retry_past_its_timeout_calls_on_give_up_with_what_was_lost_then_refuses() -> None:
    given_up: list[tuple[str, str]] = []
    retry = StoreRetry(
        StoreRetrySettings(timeout="0s", delay="10ms"),
        sleep=lambda _s: None,
        on_give_up=lambda what, exc: given_up.append((what, reason(exc))),
    )

    def write() -> None:
        raise _locked()

    with pytest.raises(StoreUnavailable, match="database is locked"):
        retry(write, "the result of task t1")
    assert given_up == [("the result of task t1", "OperationalError: database is locked")]


def test_a_restarted_coordinator_waits_for_its_store_and_fails_at_once_on_anything_else() -> None:
    waits: list[float] = []
    tries = iter([_locked(), _locked(), _locked(), "the store"])

    def opener(_settings: Settings) -> Any:
        found = next(tries)
        if isinstance(found, Exception):
            raise found
        return found

    settings = Settings(store_retry=StoreRetrySettings(delay="100ms", max_delay="300ms"))
    assert open_store_when_back(settings, opener, waits.append) == "the store"
    assert waits == [0.1, 0.2, 0.3]  # backoff doubling, up to datastore.retry.max.delay

    def broken(_settings: Settings) -> Any:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: jobs"))

    with pytest.raises(OperationalError, match="no such table"):
        open_store_when_back(settings, broken, waits.append)


def test_only_a_coordinator_in_a_ray_actor_ends_its_process_on_a_give_up() -> None:
    assert give_up_handler() is None  # plain code (a test, a tool): nobody would restart it, so it refuses
