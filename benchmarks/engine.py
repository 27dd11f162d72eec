"""An in-process engine for benchmarks: local Ray with one queue, the coordinator, SQLite, uvicorn HTTP."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tork_ray.api.app import create_app
from tork_ray.settings import RaySettings, Settings
from tork_ray.standalone import engine as run_engine
from tork_ray.store.store import Store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_engine(data_dir: Path, slots: int) -> Iterator[httpx.Client]:
    """Yields an HTTP client of a fresh engine whose `default` queue has `slots` slots."""
    settings = Settings(
        data_dir=data_dir,
        queues={"default": slots},
        ray=RaySettings(namespace=f"tork_bench_{uuid.uuid4().hex[:8]}"),
    )
    with run_engine(settings) as coordinator:
        app = create_app(settings, coordinator, Store(settings.store_url))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
                yield http
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def run_job(http: httpx.Client, body: str) -> dict[str, Any]:
    """Submits with `wait`, so the answer comes when the job ends (no polling in the measurement)."""
    response = http.post("/jobs", content=body.encode(), headers={"Content-Type": "text/yaml"})
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    if job.get("state") != "COMPLETED":
        raise RuntimeError(f"benchmark job did not complete: {job.get('state')} {job.get('error')}")
    return job
