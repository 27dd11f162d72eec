"""An in-process engine for benchmarks: local Ray with one queue, the coordinator, SQLite, uvicorn HTTP."""

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
from tork_ray.standalone import engine as run_engine
from tork_ray.store.store import Store


@contextmanager
def live_engine(
    data_dir: Path,
    slots: int,
    runtime: RuntimeSettings | None = None,
    worker: WorkerSettings | None = None,
    spare_queues: dict[str, int] | None = None,
) -> Iterator[httpx.Client]:
    """Yields an HTTP client of a fresh engine whose `default` queue has `slots` slots (Docker runtime unless
    `runtime` says otherwise; `worker`: worker.* settings, the defaults unless given). `spare_queues`: more
    queue resources on the node, for a baseline's raw Ray tasks beside the engine's."""
    settings = Settings(
        data_dir=data_dir,
        queues={"default": slots, **(spare_queues or {})},
        ray=RaySettings(namespace=f"tork_bench_{uuid.uuid4().hex[:8]}"),
        runtime=runtime or RuntimeSettings(),
        worker=worker or WorkerSettings(),
    )
    with run_engine(settings) as coordinator:
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
