"""The database away for a few seconds (a private PostgreSQL server, stopped and started while jobs run): the API
answers 503 with the reason, the coordinator waits and retries its writes, and every job completes after."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.jobs_http import scope_containers, submit
from tests.polling import poll_until
from tests.private_postgres import private_postgres
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.coordinator.actor import MAX_CONCURRENCY, CoordinatorActor
from tork_ray.settings import DatastoreSettings
from tork_ray.store.outage import StoreRetrySettings
from tork_ray.store.store import open_store

JOBS = 4


def _job(n: int) -> dict[str, Any]:
    return {
        "name": f"outage-{n}",
        "tasks": [
            {"name": "first", "image": TEST_IMAGE, "run": f"echo begin-{n}; sleep 2; echo end-{n}"},
            {"name": "second", "image": TEST_IMAGE, "run": f"echo second-{n}"},
        ],
    }


def test_jobs_survive_a_database_outage(live_engine: LiveEngine, tmp_path: Path, docker_client: Any) -> None:
    with private_postgres() as server:
        namespace = f"outage_{uuid.uuid4().hex[:8]}"
        settings = replace(
            live_engine.settings,
            data_dir=tmp_path / "data",
            ray=replace(live_engine.settings.ray, namespace=namespace, coordinator_name=f"c-{namespace}"),
            datastore=replace(live_engine.settings.datastore, type="postgres", postgres_dsn=server.url),
            store_retry=StoreRetrySettings(timeout="120s", delay="100ms", max_delay="500ms"),
        )
        assert isinstance(settings.datastore, DatastoreSettings)
        store = open_store(settings)
        handle = CoordinatorActor.options(  # type: ignore[attr-defined]
            name=settings.ray.coordinator_name, namespace=namespace, num_cpus=0, max_concurrency=MAX_CONCURRENCY
        ).remote(settings)
        try:
            app = create_app(settings, handle, store)
            with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=180) as http:
                _outage(http, server, docker_client, namespace)
        finally:
            ray.kill(handle, no_restart=True)
            store.close()


def _outage(http: httpx.Client, server: Any, docker: Any, namespace: str) -> None:
    ids = [submit(http, _job(n)) for n in range(JOBS)]
    # As many tasks running as the queue has slots: each reports its end while the database is away.
    running = poll_until(lambda: len(c := scope_containers(docker, namespace)) >= 2 and c, 60, "2 tasks to run")
    server.stop()
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
    gone = {c.id for c in running}
    poll_until(lambda: not gone & {c.id for c in scope_containers(docker, namespace)}, 60, "tasks to end")
    print(f"tasks that ended during the outage: {len(gone)}; outage so far {time.monotonic() - stopped:.1f}s")

    server.start()
    back = time.monotonic()
    print(f"database down for {back - stopped:.1f}s")
    poll_until(lambda: http.get("/health").status_code == 200, 60, "/health UP after the outage")
    again = http.post("/jobs", json=_job(JOBS), headers={"Idempotency-Key": "late"})
    assert again.status_code == 200, again.text
    ids.append(again.json()["id"])
    assert http.get("/jobs").json()["totalItems"] == JOBS + 1  # the refused POST stored nothing
    for job_id in ids:
        job = poll_until(lambda j=job_id: _terminal(http, j), 120, f"job {job_id} to end")
        assert job["state"] == "COMPLETED", job
        positions = [task["position"] for task in job["execution"]]
        assert sorted(positions) == [1, 2], f"each task once, none lost or run twice: {job['execution']}"
        for task in job["execution"]:
            assert task["state"] == "COMPLETED", task
        log_text = http.get(f"/tasks/{job['execution'][0]['id']}/log").text
        n = job["name"].removeprefix("outage-")
        assert f"begin-{n}" in log_text and f"end-{n}" in log_text, log_text
    print(f"all {len(ids)} jobs completed {time.monotonic() - back:.1f}s after the database was back")
    assert not scope_containers(docker, namespace, every=True)


def _terminal(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    response = http.get(f"/jobs/{job_id}")
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 and body["state"] in ("COMPLETED", "FAILED", "CANCELLED") else None
