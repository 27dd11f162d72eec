"""In-process engines for benchmarks: local Ray, the coordinator, SQLite, uvicorn HTTP; one engine on a Ray of its
own (`live_engine`), or several on one Ray (`ray_started` once, then `engine_api` for each)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.settings import RaySettings, RuntimeSettings, Settings, WorkerSettings
from tork_ray.standalone import coordinator_running, ray_started
from tork_ray.store.store import Store


def bench_settings(
    data_dir: Path,
    queues: dict[str, int],
    runtime: RuntimeSettings | None = None,
    worker: WorkerSettings | None = None,
) -> Settings:
    """An engine's settings: its own data directory and Ray namespace, the Docker runtime unless `runtime`
    says otherwise, worker.* defaults unless `worker` is given."""
    return Settings(
        data_dir=data_dir,
        queues=queues,
        ray=RaySettings(namespace=f"tork_bench_{uuid.uuid4().hex[:8]}"),
        runtime=runtime or RuntimeSettings(),
        worker=worker or WorkerSettings(),
    )


@contextmanager
def live_engine(
    data_dir: Path,
    slots: int,
    runtime: RuntimeSettings | None = None,
    worker: WorkerSettings | None = None,
) -> Iterator[httpx.Client]:
    """Yields an HTTP client of a fresh engine on a Ray of its own whose `default` queue has `slots` slots."""
    settings = bench_settings(data_dir, {"default": slots}, runtime, worker)
    with ray_started(settings), engine_api(settings) as http:
        yield http


@contextmanager
def engine_api(settings: Settings) -> Iterator[httpx.Client]:
    """A coordinator and its API on the Ray this process is connected to; an HTTP client of it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with coordinator_running(settings) as coordinator:
        app = create_app(settings, coordinator, Store(settings.store_url))
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=600) as http:
            yield http


def run_job(http: httpx.Client, body: str) -> dict[str, Any]:
    """Submits with `wait`, so the answer comes when the job ends (no polling in the measurement)."""
    response = http.post("/jobs", content=body.encode(), headers={"Content-Type": "text/yaml"})
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    if job.get("state") != "COMPLETED":
        raise RuntimeError(f"benchmark job did not complete: {job.get('state')} {job.get('error')}")
    return job
