"""The Docker engine restarting under a running task (a private dockerd, restarted by the test), on both stores:
the attempt fails with an error naming Docker, its retry waits for the engine and succeeds, and no container is left."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine, stop_coordinator
from tests.integration.gates import GATED, open_gates
from tests.integration.jobs_http import scope_containers, submit
from tests.polling import poll_until
from tests.postgres import fresh_database
from tests.private_docker import PrivateDocker, private_docker
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.coordinator.actor import MAX_CONCURRENCY, CoordinatorActor
from tork_ray.store.store import open_store

# Stopped by the engine's shutdown: it exits on SIGTERM, as a well-behaved program does. Held by a gate (no
# timing window under load): the first attempt never ends by itself, the test opens its retry's gate.
KILLED = {
    "name": "killed",
    "tasks": [
        {
            "name": "killed",
            "image": TEST_IMAGE,
            "run": f"trap 'exit 143' TERM; {GATED}; echo done > $TORK_OUTPUT",
            "retry": {"limit": 2},
        }
    ],
}
# Ignores SIGTERM (a shell as PID 1 without a trap) and ends on its own while the engine shuts down: its gate is
# opened just before the stop, then it sleeps 3 s.
FINISHER = {
    "name": "finisher",
    "tasks": [{"name": "finisher", "image": TEST_IMAGE, "run": f"{GATED}; sleep 3; echo done > $TORK_OUTPUT"}],
}


def test_a_docker_restart_fails_the_attempt_clearly_and_its_retry_succeeds(
    live_engine: LiveEngine, tmp_path: Path
) -> None:
    """One restart of a private dockerd under two engines side by side, one on SQLite and one on PostgreSQL
    (a fresh database): the invariants are checked on each store for the price of one restart. The session
    cluster has 2 `default` slots and 1 `other`: SQLite's engine runs the killed task and the finisher on
    `default`, PostgreSQL's its killed task on `other`."""
    with private_docker() as dockerd, fresh_database("docker_restart") as postgres_url, ExitStack() as stack:
        engines = [
            stack.enter_context(_engine(live_engine, dockerd, tmp_path / "sqlite", None)),
            stack.enter_context(_engine(live_engine, dockerd, tmp_path / "postgres", postgres_url)),
        ]
        engines[0].killed, engines[0].finisher = (submit(engines[0].http, job) for job in (KILLED, FINISHER))
        engines[1].killed = submit(engines[1].http, _on_queue(KILLED, "other"))
        _restart_under_tasks(engines, dockerd)


def _on_queue(job: dict[str, Any], queue: str) -> dict[str, Any]:
    return {**job, "tasks": [{**task, "queue": queue} for task in job["tasks"]]}


@dataclass
class _Engine:
    namespace: str
    http: httpx.Client
    killed: str = ""
    finisher: str | None = None  # a job whose task ends by itself during the restart

    def job_ids(self) -> list[str]:
        return [self.killed] + ([self.finisher] if self.finisher else [])


@contextmanager
def _engine(
    live_engine: LiveEngine, dockerd: PrivateDocker, data_dir: Path, postgres_url: str | None
) -> Iterator[_Engine]:
    """A coordinator and an API of their own, on runtime.docker.host = the private dockerd, on SQLite in
    `data_dir` or on the PostgreSQL database `postgres_url`."""
    namespace = f"dockerd_{uuid.uuid4().hex[:8]}"
    datastore = live_engine.settings.datastore
    if postgres_url is not None:
        datastore = replace(datastore, type="postgres", postgres_dsn=postgres_url)
    settings = replace(
        live_engine.settings,
        data_dir=data_dir,
        datastore=datastore,
        ray=replace(live_engine.settings.ray, namespace=namespace, coordinator_name=f"c-{namespace}"),
        runtime=replace(live_engine.settings.runtime, docker_host=dockerd.host),  # runtime.docker.host
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings)
    handle = CoordinatorActor.options(  # type: ignore[attr-defined]
        name=settings.ray.coordinator_name, namespace=namespace, num_cpus=0, max_concurrency=MAX_CONCURRENCY
    ).remote(settings)
    try:
        app = create_app(settings, handle, store)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield _Engine(namespace, http)
    finally:
        stop_coordinator(handle)
        store.close()


def _restart_under_tasks(engines: list[_Engine], dockerd: PrivateDocker) -> None:
    with dockerd.client() as client:
        for engine in engines:
            poll_until(
                lambda e=engine: (
                    len(scope_containers(client, e.namespace)) == len(e.job_ids())
                    or any(_ended(e.http, job_id) for job_id in e.job_ids())
                ),
                60,
                f"the jobs' containers to run ({engine.namespace})",
            )
            states = [
                [(task["state"], task.get("error")) for task in engine.http.get(f"/jobs/{job_id}").json()["execution"]]
                for job_id in engine.job_ids()
            ]
            assert len(scope_containers(client, engine.namespace)) == len(engine.job_ids()), states
        for engine in engines:
            if engine.finisher:
                assert open_gates(client, engine.finisher) == 1
    began = time.monotonic()
    dockerd.stop()
    stopped = time.monotonic()
    dockerd.start()
    print(f"dockerd stopped in {stopped - began:.1f}s, answered again {time.monotonic() - stopped:.1f}s later")
    for engine in engines:
        _check_after_restart(engine, dockerd, began)


def _check_after_restart(engine: _Engine, dockerd: PrivateDocker, began: float) -> None:
    http = engine.http
    with dockerd.client() as client:  # the retry's container is let through its gate

        def retried_and_ended() -> dict[str, Any] | None:
            open_gates(client, engine.killed)
            return _ended(http, engine.killed)

        job = poll_until(retried_and_ended, 120, "the killed job to end")
    attempts = job["execution"]
    for attempt in attempts:
        print(f"{engine.namespace} attempt: {attempt['state']} {attempt.get('error', '')!r}")
    assert job["state"] == "COMPLETED", job
    assert attempts[0]["state"] == "FAILED"
    assert attempts[0]["error"].startswith("the Docker engine stopped while the task ran"), attempts[0]["error"]
    assert attempts[-1]["state"] == "COMPLETED" and attempts[-1]["result"].strip() == "done"
    assert [a["state"] for a in attempts].count("COMPLETED") == 1  # ran to the end once, not twice
    print(f"killed job completed {time.monotonic() - began:.1f}s after the restart began, in {len(attempts)} attempts")
    # The engine keeps the record of a container that ended on its own meanwhile: its own exit code counts.
    if engine.finisher:
        other = poll_until(lambda: _ended(http, engine.finisher or ""), 60, "the finisher job to end")
        assert other["state"] == "COMPLETED" and len(other["execution"]) == 1, other["execution"]
    with dockerd.client() as client:  # the stopped first container, kept by the engine, is removed too
        poll_until(
            lambda: not scope_containers(client, engine.namespace, every=True),
            60,
            "no container of the jobs to be left",
        )


def _ended(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
    return body if body.get("state") in ("COMPLETED", "FAILED", "CANCELLED") else None
