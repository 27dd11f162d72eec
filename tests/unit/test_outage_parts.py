"""Which errors are an outage (waited out) and which are not (failed at once); the datastore.retry settings."""

from __future__ import annotations

import sqlite3

import pytest
import requests
from docker.errors import DockerException
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from tork_ray.errors import BadRequest
from tork_ray.runtime.docker_daemon import daemon_gone
from tork_ray.settings import load_settings
from tork_ray.store.outage import StoreRetrySettings, is_outage, reason


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
