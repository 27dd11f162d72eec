"""A store outage longer than datastore.retry.timeout, on both stores: the coordinator gives up by ending its
process, Ray restarts it, the new process waits for the store and recovers from it. Every job completes, no task
stays RUNNING, and no task whose completion was stored runs again (the results that met the outage were never
stored: those tasks are redelivered)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.engine import LiveEngine
from tests.integration.jobs_http import submit
from tests.integration.outage_engine import Outage, OutageEngine, ServerStopped, SqliteLocked, outage_engine, states
from tests.integration.outage_engine import terminal as terminal_job
from tests.polling import poll_until
from tests.private_postgres import private_postgres
from tork_ray.settings import DatastoreSettings
from tork_ray.store.outage import StoreRetrySettings

JOBS = 4
RETRY = StoreRetrySettings(timeout="1s", delay="100ms", max_delay="200ms")  # far shorter than the outage


def _job(n: int, runs: Path) -> dict[str, Any]:
    """Two shell tasks; each run of a task appends a line to its own file (how often it really started)."""
    return {
        "name": f"long-outage-{n}",
        "tasks": [
            {"name": "first", "run": f"echo >> {runs}/{n}.first; echo begin-{n}; sleep 2; echo end-{n}"},
            {"name": "second", "run": f"echo >> {runs}/{n}.second; echo second-{n}"},
        ],
    }


@contextmanager
def _store(kind: str, tmp_path: Path) -> Iterator[tuple[DatastoreSettings, Outage]]:
    if kind == "sqlite":
        path = tmp_path / "tork.db"
        # SQLite's own busy wait short, so a held lock soon reaches the coordinator's retry (and its timeout).
        yield DatastoreSettings(sqlite_path=str(path), sqlite_busy_timeout="200ms"), SqliteLocked(path)
        return
    with private_postgres() as server:
        yield DatastoreSettings(type="postgres", postgres_dsn=server.url), ServerStopped(server)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_outage_past_the_retry_timeout_restarts_the_coordinator_and_loses_nothing(
    live_engine: LiveEngine, tmp_path: Path, kind: str
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    base = live_engine.settings
    with _store(kind, tmp_path) as (datastore, outage):
        datastore = replace(datastore, encryption_key=base.datastore.encryption_key)
        runtime = replace(base.runtime, type="shell")
        with outage_engine(base, tmp_path / "data", datastore, RETRY, runtime=runtime) as engine:
            _long_outage(engine, outage, runs)


def _long_outage(engine: OutageEngine, outage: Outage, runs: Path) -> None:
    http = engine.http
    ids = [submit(http, _job(n, runs)) for n in range(JOBS)]

    def two_running() -> bool:
        return sum(state == "RUNNING" for tasks in states(http, ids).values() for *_, state in tasks) == 2

    poll_until(two_running, 60, "2 tasks to run")
    before = states(http, ids)
    old_pid = engine.actor()["Pid"]
    outage.begin()
    began = time.monotonic()
    # The running tasks end meanwhile; their results cannot be stored within datastore.retry.timeout (1 s): the
    # coordinator's process exits and Ray restarts it; the new one waits for the store before it recovers.
    poll_until(lambda: engine.restarts() >= 1, 60, "the coordinator to give up and be restarted")
    print(f"coordinator restarted {time.monotonic() - began:.1f}s into the outage")
    # Its constructor waits for the store (one that raised would leave the actor dead, never restarted).
    poll_until(lambda: engine.constructing(old_pid), 60, "the restarted coordinator's constructor to run")
    print(f"the restarted coordinator waits for the store {time.monotonic() - began:.1f}s into the outage")
    outage.end()
    back = time.monotonic()
    print(f"store out of reach for {back - began:.1f}s")
    finished = [poll_until(lambda j=job_id: terminal_job(http, j), 120, f"job {job_id} to end") for job_id in ids]
    print(f"all {len(ids)} jobs ended {time.monotonic() - back:.1f}s after the store was back")
    started = Counter(path.name for path in runs.iterdir() for _line in path.read_text().splitlines())

    for job in finished:
        n = job["name"].removeprefix("long-outage-")
        attempts = [(t["name"], t["state"], t.get("redelivered", 0)) for t in job["execution"]]
        assert job["state"] == "COMPLETED", (job.get("error"), attempts)
        assert sorted(t["position"] for t in job["execution"]) == [1, 2], f"each task once: {attempts}"
        assert all(t["state"] == "COMPLETED" for t in job["execution"]), attempts
        # A completion stored before the outage: the same record stays COMPLETED, and its task never ran again.
        for task_id, name, state in before[job["id"]]:
            if state == "COMPLETED":
                final = {t["id"]: t["state"] for t in job["execution"]}
                assert final.get(task_id) == "COMPLETED" and started[f"{n}.{name}"] == 1, (name, attempts)
        # Running when the store went: ran again once (its result was lost with the old process), or once only
        # (it ended and its result was stored before the give-up).
        assert all(started[f"{n}.{name}"] in (1, 2) for name in ("first", "second")), (n, started)
    # Given up once: the restarted process waited for the store instead of failing (and being restarted) again.
    assert engine.restarts() == 1
    print(f"runs per task: {sorted(started.items())}")
