"""/health tells whether the coordinator has recovered its jobs; a failed recovery is tried again."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import ray

from tests.engine import LiveEngine
from tests.polling import poll_until
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.coordinator.actor import CoordinatorActor
from tork_ray.domain.models import utcnow
from tork_ray.store.store import open_store


def test_health_is_down_while_recovery_fails_and_up_once_it_succeeds(live_engine: LiveEngine, tmp_path: Path) -> None:
    name = f"coordinator-{uuid.uuid4().hex[:8]}"
    ray_settings = replace(live_engine.settings.ray, namespace=f"ready_{uuid.uuid4().hex[:8]}", coordinator_name=name)
    settings = replace(live_engine.settings, data_dir=tmp_path, ray=ray_settings)
    store = open_store(settings)
    # A corrupt row, for real: an unfinished job whose document is not a job. Reading the unfinished jobs
    # fails on it, so recovery fails, every attempt, until the row is repaired.
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO jobs (id, name, state, created_at, position, task_count, progress, doc) "
            "VALUES (?, 'corrupt', 'RUNNING', ?, 1, 1, 0, ?)",
            ("c" * 32, utcnow().isoformat(" "), '{"tasks": "not a list"}'),
        )
    handle = CoordinatorActor.options(name=name, namespace=ray_settings.namespace, num_cpus=0).remote(settings)  # type: ignore[attr-defined]
    try:
        with serve_in_thread(create_app(settings, handle, store)) as url, httpx.Client(base_url=url) as http:
            down = poll_until(lambda: _down(http), 60, "/health to report the failed recovery")
            print(f"/health while recovery fails: {down}")
            assert down["status"] == "DOWN"
            assert down["error"].startswith("coordinator is not ready: recovery failed: ValidationError")
            refused = http.post("/jobs", json={"name": "j", "tasks": [{"name": "t", "if": "false"}]})
            assert refused.status_code == 503
            assert refused.json()["message"].startswith("coordinator is not ready: recovery failed")

            with store.engine.begin() as connection:  # the operator repairs the row
                connection.exec_driver_sql("UPDATE jobs SET doc = '{}' WHERE id = ?", ("c" * 32,))
            poll_until(lambda: http.get("/health").status_code == 200, 60, "/health UP after the repair")
            answered = http.post("/jobs", json={"name": "j", "tasks": [{"name": "t", "if": "false"}]})
            assert answered.status_code == 200, answered.text
            failures = ray.get(handle.readiness.remote())["failures"]
            print(f"recovery attempts that failed before the repair: {failures}")
            assert failures >= 1
            repaired = store.get_job("c" * 32)  # recovered: a RUNNING job with nothing to run is failed
            assert repaired is not None and repaired.state == "FAILED"
    finally:
        ray.kill(handle, no_restart=True)


def _down(http: httpx.Client) -> dict[str, str] | None:
    response = http.get("/health")
    body = response.json()
    return body if response.status_code == 503 and "recovery failed" in body.get("error", "") else None  # type: ignore[no-any-return]
