"""One real engine per test session: local Ray with queue resources, the coordinator, SQLite, HTTP."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tork_ray.api.app import create_app
from tork_ray.settings import RaySettings, Settings
from tork_ray.standalone import engine as run_engine
from tork_ray.store.store import Store

QUEUES = {"default": 2, "other": 1}


@dataclass
class LiveEngine:
    settings: Settings
    coordinator: Any
    store: Store
    http: httpx.Client

    def submit(self, body: str, content_type: str = "text/yaml") -> dict[str, Any]:
        response = self.http.post("/jobs", content=body.encode(), headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_for(self, job_id: str, *states: str, timeout: float = 60.0) -> dict[str, Any]:
        """Polls until the job is in one of `states` (default: any terminal state), with a deadline."""
        wanted = set(states) or {"COMPLETED", "FAILED", "CANCELLED"}
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.http.get(f"/jobs/{job_id}").json()
            if job.get("state") in wanted:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not reach {wanted} in {timeout}s; last seen: {job}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_engine(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[LiveEngine]:
    data_dir: Path = tmp_path_factory.mktemp("engine")
    settings = Settings(
        data_dir=data_dir,
        queues=QUEUES,
        ray=RaySettings(namespace=f"tork_test_{uuid.uuid4().hex[:8]}", num_cpus=2),
    )
    with run_engine(settings) as coordinator:
        store = Store(settings.store_url)
        app = create_app(settings, coordinator, store)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield LiveEngine(settings, coordinator, store, http)
        server.should_exit = True
        thread.join(timeout=10)
