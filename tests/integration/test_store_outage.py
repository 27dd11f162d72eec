"""The database away for a few seconds while jobs run, within datastore.retry.timeout, on both stores.

PostgreSQL: a private server stopped and started. The API answers 503 with the reason, the coordinator waits and
retries its writes, every job completes, each task once, logs whole, a refused POST stored nothing; the webhook
sender and the sweeper live through it (a webhook delivered and an expired job deleted after it).

SQLite: another process holds the database's write lock (`BEGIN EXCLUSIVE`) past SQLite's busy timeout. In WAL
mode a write lock does not stop readers, so the API keeps answering reads (better than a 503); every write waits:
the coordinator's are retried, a POST made meanwhile is answered once the lock goes and stored once; the
scheduler lives through it (a schedule firing every second fires again after it).

The tasks that end during the outage are held by the test (a file to wait for, made by `docker exec`, which needs
no store): no write of the coordinator is under way when the outage begins, so a write request meets it at once."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.integration.jobs_http import scope_containers, submit
from tests.integration.outage_engine import OutageEngine, ServerStopped, SqliteLocked, outage_engine, terminal
from tests.polling import poll_until
from tests.private_postgres import private_postgres
from tests.webhook_receiver import Receiver, receiver
from tork_ray.runtime.base import LABEL_JOB
from tork_ray.store.outage import StoreRetrySettings

JOBS = 4
RETRY = StoreRetrySettings(timeout="120s", delay="100ms", max_delay="500ms")  # longer than any outage here


def _job(n: int, **more: Any) -> dict[str, Any]:
    return {
        "name": f"outage-{n}",
        "tasks": [
            {"name": "first", "image": TEST_IMAGE, "run": f"echo begin-{n}; {GATED}; echo end-{n}"},
            {"name": "second", "image": TEST_IMAGE, "run": f"echo second-{n}"},
        ],
        **more,
    }


def test_jobs_survive_a_database_outage(live_engine: LiveEngine, tmp_path: Path, docker_client: Any) -> None:
    base = live_engine.settings
    with private_postgres() as server, receiver() as hooks:
        # The sweeper looks every second: an expired job is due for deletion while the server is away.
        datastore = replace(base.datastore, type="postgres", postgres_dsn=server.url, cleanup_interval="1s")
        with outage_engine(base, tmp_path / "data", datastore, RETRY) as engine:
            _outage(engine, ServerStopped(server), docker_client, hooks)


def _outage(engine: OutageEngine, server: ServerStopped, docker: Any, hooks: Receiver) -> None:
    http, namespace = engine.http, engine.namespace
    ids = [submit(http, _job(n, webhooks=[{"url": f"{hooks.url}/job"}] if n == 0 else [])) for n in range(JOBS)]
    # As many tasks running as the queue has slots: each reports its end while the database is away.
    running = _two_running(http, docker, namespace, ids)
    server.begin()
    stopped = time.monotonic()

    # Reads (the store): 503 with the reason, at once. /health: DOWN with the reason.
    read = http.get(f"/jobs/{ids[0]}")
    print(f"GET /jobs/id during the outage: {read.status_code} {read.json()}")
    assert read.status_code == 503 and read.json()["message"].startswith("the store is unavailable: ")
    listed = http.get("/jobs")
    assert listed.status_code == 503 and "the store is unavailable" in listed.json()["message"]
    health = http.get("/health")
    print(f"/health during the outage: {health.status_code} {health.json()}")
    assert health.status_code == 503 and health.json()["error"].startswith("the store is unavailable: ")

    # Writes (the coordinator): refused at once with the reason (its request-id lookup meets the outage before
    # anything is changed), nothing half-stored; a client tries again later, with the same Idempotency-Key.
    refused = http.post("/jobs", json=_job(JOBS), headers={"Idempotency-Key": "late"})
    print(f"POST /jobs during the outage: {refused.status_code} {refused.json()}")
    assert refused.status_code == 503 and refused.json()["message"].startswith("the store is unavailable: ")
    cancel = http.put(f"/jobs/{ids[0]}/cancel")
    assert cancel.status_code == 503 and cancel.json()["message"].startswith("the store is unavailable: ")
    # Workers report meanwhile: the tasks that were running end and their containers go, their results,
    # started events and log parts wait in the coordinator for the store.
    _end_during(docker, namespace, ids, running)
    print(f"tasks that ended during the outage: {len(running)}; outage so far {time.monotonic() - stopped:.1f}s")

    server.end()
    back = time.monotonic()
    print(f"database down for {back - stopped:.1f}s")
    poll_until(lambda: http.get("/health").status_code == 200, 60, "/health UP after the outage")
    again = http.post("/jobs", json=_job(JOBS), headers={"Idempotency-Key": "late"})
    assert again.status_code == 200, again.text
    ids.append(again.json()["id"])
    assert _named(http, f"outage-{JOBS}") == [ids[-1]]  # the refused POST stored nothing
    expiring = submit(http, _expiring())  # deleted a second after it is done, by a sweeper that met the outage
    _check_completed(http, docker, ids)
    print(f"all {len(ids)} jobs completed {time.monotonic() - back:.1f}s after the database was back")
    # The webhook sender (its own thread) met the outage at each look: the COMPLETED call came after it, once.
    poll_until(lambda: [b["state"] for b in hooks.bodies("/job")][-1:] == ["COMPLETED"], 30, "the COMPLETED call")
    assert [b["state"] for b in hooks.bodies("/job")] == ["PENDING", "RUNNING", "COMPLETED"]
    assert {b["id"] for b in hooks.bodies("/job")} == {ids[0]}
    poll_until(lambda: http.get(f"/jobs/{expiring}").status_code == 404, 30, "the expired job to be deleted")
    poll_until(lambda: not scope_containers(docker, namespace, every=True), 30, "no container left")


def _two_running(http: httpx.Client, docker: Any, namespace: str, ids: list[str]) -> list[Any]:
    """As many tasks running as the queue has slots, their start stored: no event of theirs is under way."""

    def running() -> list[Any] | None:
        stored = sum(t["state"] == "RUNNING" for i in ids for t in http.get(f"/jobs/{i}").json()["execution"])
        containers = [c for i in ids for c in running_containers(docker, i)]
        return containers if stored == 2 and len(containers) == 2 else None

    return poll_until(running, 60, "2 tasks to run")


def _end_during(docker: Any, namespace: str, ids: list[str], running: list[Any]) -> None:
    """Lets the running tasks end (their results, log parts and the like then wait for the store)."""
    for job_id in ids:
        open_gates(docker, job_id)
    gone = {c.id for c in running}
    poll_until(lambda: not gone & {c.id for c in scope_containers(docker, namespace)}, 60, "tasks to end")


def _expiring() -> dict[str, Any]:
    """Deleted a second after it is done, by the sweeper (which looks every second, so met the outage)."""
    task = {"name": "brief", "image": TEST_IMAGE, "run": "true", "queue": "other", "networks": ["none"]}
    return {"name": "expiring", "tasks": [task], "autoDelete": {"after": "1s"}}


def _schedule(http: httpx.Client, tag: str) -> str:
    """A schedule firing every second, on the queue the outage jobs do not use."""
    task = {"name": "tick", "image": TEST_IMAGE, "run": "true", "queue": "other", "networks": ["none"]}
    doc = {"name": "ticking", "tags": [tag], "schedule": {"cron": "@every 1s"}, "tasks": [task]}
    response = http.post("/scheduled-jobs", json=doc)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_jobs_survive_a_locked_sqlite_database(live_engine: LiveEngine, tmp_path: Path, docker_client: Any) -> None:
    base = live_engine.settings
    path = tmp_path / "tork.db"
    # SQLite's own busy wait short, so the lock reaches the coordinator's retry (datastore.retry.*).
    datastore = replace(base.datastore, sqlite_path=str(path), sqlite_busy_timeout="200ms")
    with outage_engine(base, tmp_path / "data", datastore, RETRY) as engine:
        _locked(engine, SqliteLocked(path), docker_client)


def _locked(engine: OutageEngine, lock: SqliteLocked, docker: Any) -> None:
    http, namespace = engine.http, engine.namespace
    ids = [submit(http, _job(n)) for n in range(JOBS)]
    tag = f"cron-{uuid.uuid4().hex[:8]}"
    scheduled = _schedule(http, tag)
    running = _two_running(http, docker, namespace, ids)
    lock.begin()
    locked = time.monotonic()
    # WAL: readers go on under another process's write lock. The job of a running task (which of the jobs run
    # first is not certain: an executor may take the queue's next tasks before its slots free).
    read = http.get(f"/jobs/{running[0].labels[LABEL_JOB]}")
    assert read.status_code == 200 and read.json()["state"] == "RUNNING", read.text
    # A submission meanwhile waits for the lock (the coordinator retries its write), then is answered once.
    late: dict[str, httpx.Response] = {}
    poster = threading.Thread(target=lambda: late.update(r=_post_late(str(http.base_url))), daemon=True)
    poster.start()
    _end_during(docker, namespace, ids, running)
    assert poster.is_alive(), f"the POST was answered while the database was locked: {late}"
    lock.end()
    released = time.time()
    print(f"database locked for {time.monotonic() - locked:.1f}s")
    poster.join(timeout=120)
    assert "r" in late and late["r"].status_code == 200, late
    ids.append(late["r"].json()["id"])
    assert _named(http, f"outage-{JOBS}") == [ids[-1]]
    _check_completed(http, docker, ids)
    assert engine.restarts() == 0  # waited out, within datastore.retry.timeout: no give-up

    # The scheduler met the lock at its ticks (each a write): it fires again after it.
    def fired_after() -> bool:
        jobs = http.get("/jobs", params={"q": f"tag:{tag}", "size": 50}).json()["items"]
        return any(_epoch(job["createdAt"]) > released for job in jobs)

    poll_until(fired_after, 30, "the schedule to fire after the lock")
    assert http.put(f"/scheduled-jobs/{scheduled}/pause").status_code == 200
    poll_until(lambda: not scope_containers(docker, namespace, every=True), 30, "no container left")


def _post_late(base_url: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=180) as client:
        return client.post("/jobs", json=_job(JOBS), headers={"Idempotency-Key": "late"})


def _named(http: httpx.Client, name: str) -> list[str]:
    jobs = http.get("/jobs", params={"size": 100}).json()["items"]
    return [job["id"] for job in jobs if job["name"] == name]


def _check_completed(http: httpx.Client, docker: Any, ids: list[str]) -> None:
    """Every job COMPLETED, each task once (none lost, none run twice), each first task's log whole."""

    def ended(job_id: str) -> dict[str, Any] | None:
        for any_id in ids:  # the first tasks that run after the outage (of any job: they take the slots)
            open_gates(docker, any_id)
        return terminal(http, job_id)

    for job_id in ids:
        job = poll_until(lambda j=job_id: ended(j), 120, f"job {job_id} to end")
        assert job["state"] == "COMPLETED", job
        positions = [task["position"] for task in job["execution"]]
        assert sorted(positions) == [1, 2], f"each task once, none lost or run twice: {job['execution']}"
        for task in job["execution"]:
            assert task["state"] == "COMPLETED", task
        log_text = http.get(f"/tasks/{job['execution'][0]['id']}/log").text
        n = job["name"].removeprefix("outage-")
        assert f"begin-{n}" in log_text and f"end-{n}" in log_text, log_text
