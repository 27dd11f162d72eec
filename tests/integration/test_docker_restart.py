"""The Docker engine restarting under a running task (a private dockerd, restarted by the test): the attempt
fails with an error naming Docker, its retry waits for the engine and succeeds, and no container is left."""

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
from tests.private_docker import PrivateDocker, private_docker
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.coordinator.actor import MAX_CONCURRENCY, CoordinatorActor
from tork_ray.store.store import open_store

# Stopped by the engine's shutdown: it exits on SIGTERM, as a well-behaved program does.
KILLED = {
    "name": "killed",
    "tasks": [
        {
            "name": "killed",
            "image": TEST_IMAGE,
            "run": "trap 'exit 143' TERM; sleep 6 & wait $!; echo done > $TORK_OUTPUT",
            "retry": {"limit": 2},
        }
    ],
}
# Ignores SIGTERM (a shell as PID 1 without a trap) and ends on its own while the engine shuts down.
FINISHER = {
    "name": "finisher",
    "tasks": [{"name": "finisher", "image": TEST_IMAGE, "run": "sleep 3; echo done > $TORK_OUTPUT"}],
}


def test_a_docker_restart_fails_the_attempt_clearly_and_its_retry_succeeds(
    live_engine: LiveEngine, tmp_path: Path
) -> None:
    with private_docker() as dockerd:
        namespace = f"dockerd_{uuid.uuid4().hex[:8]}"
        settings = replace(
            live_engine.settings,
            data_dir=tmp_path,
            ray=replace(live_engine.settings.ray, namespace=namespace, coordinator_name=f"c-{namespace}"),
            runtime=replace(live_engine.settings.runtime, docker_host=dockerd.host),  # runtime.docker.host
        )
        store = open_store(settings)
        handle = CoordinatorActor.options(  # type: ignore[attr-defined]
            name=settings.ray.coordinator_name, namespace=namespace, num_cpus=0, max_concurrency=MAX_CONCURRENCY
        ).remote(settings)
        try:
            app = create_app(settings, handle, store)
            with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
                _restart_under_a_task(http, dockerd, namespace)
        finally:
            ray.kill(handle, no_restart=True)
            store.close()


def _restart_under_a_task(http: httpx.Client, dockerd: PrivateDocker, namespace: str) -> None:
    killed, finisher = (submit(http, job) for job in (KILLED, FINISHER))
    with dockerd.client() as client:
        poll_until(
            lambda: len(scope_containers(client, namespace)) == 2 or _ended(http, killed) or _ended(http, finisher),
            60,
            "both jobs' containers to run",
        )
        states = [http.get(f"/jobs/{job_id}").json()["execution"] for job_id in (killed, finisher)]
        assert len(scope_containers(client, namespace)) == 2, states
    began = time.monotonic()
    dockerd.stop()
    stopped = time.monotonic()
    dockerd.start()
    print(f"dockerd stopped in {stopped - began:.1f}s, answered again {time.monotonic() - stopped:.1f}s later")

    job = poll_until(lambda: _ended(http, killed), 120, "the killed job to end")
    attempts = job["execution"]
    for attempt in attempts:
        print(f"attempt: {attempt['state']} {attempt.get('error', '')!r}")
    assert job["state"] == "COMPLETED", job
    assert attempts[0]["state"] == "FAILED"
    assert attempts[0]["error"].startswith("the Docker engine stopped while the task ran"), attempts[0]["error"]
    assert attempts[-1]["state"] == "COMPLETED" and attempts[-1]["result"].strip() == "done"
    assert [a["state"] for a in attempts].count("COMPLETED") == 1  # ran to the end once, not twice
    print(f"killed job completed {time.monotonic() - began:.1f}s after the restart began, in {len(attempts)} attempts")
    # The engine keeps the record of a container that ended on its own meanwhile: its own exit code counts.
    other = poll_until(lambda: _ended(http, finisher), 60, "the finisher job to end")
    assert other["state"] == "COMPLETED" and len(other["execution"]) == 1, other["execution"]
    with dockerd.client() as client:  # the stopped first container, kept by the engine, is removed too
        poll_until(
            lambda: not scope_containers(client, namespace, every=True), 60, "no container of the jobs to be left"
        )


def _ended(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
    return body if body.get("state") in ("COMPLETED", "FAILED", "CANCELLED") else None
