"""A live engine for tests: one per session (local Ray with queue resources, coordinator, SQLite, HTTP)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tork_ray.api.background import free_port as free_port  # re-exported for the tests
from tork_ray.settings import Settings
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

    def submit_json(self, document: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/jobs", json=document)
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
