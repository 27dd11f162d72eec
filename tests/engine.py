"""A live engine for tests: one per session (local Ray with queue resources, coordinator, SQLite, HTTP)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx

from tests.polling import poll_until
from tork_ray.api.background import free_port as free_port  # re-exported for the tests
from tork_ray.settings import Settings
from tork_ray.store.store import Store

QUEUES = {"default": 2, "other": 1}
# The session's engines share one Ray cluster and its queues: the session engine, its PostgreSQL twin, and the
# engines some modules start beside them. An engine's executor holds a queue's slots until it has been idle for
# worker.linger, so each turn from one engine to another waits that long first (10 s by default); short here.
TEST_LINGER = "500ms"


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
        """Polls until the job is in one of `states` (default: any terminal state); fails at the deadline."""
        wanted = set(states) or {"COMPLETED", "FAILED", "CANCELLED"}

        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            last.update(self.http.get(f"/jobs/{job_id}").json())
            return dict(last) if last.get("state") in wanted else None

        try:
            return poll_until(reached, timeout, f"job {job_id} to reach {sorted(wanted)}", every=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the job last seen: {last}") from None


def stop_coordinator(handle: Any) -> None:
    """Stops a test's own coordinator as an engine stops (shutdown: its tasks interrupted, its executors stopped
    once started), then kills it. Killed outright, an executor it was just making can keep its queue's slots
    for the rest of the session (coordinator/executors.py stop_all), and the next engine's tasks never run."""
    import ray

    with contextlib.suppress(Exception):  # a coordinator already dead, or stuck: killed all the same
        ray.get(handle.shutdown.remote(), timeout=30)
    ray.kill(handle, no_restart=True)
