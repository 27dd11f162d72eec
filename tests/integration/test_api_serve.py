"""The same app through Ray Serve (the cluster's way of serving it), against the session engine's coordinator,
with basic and key auth on: the replica authenticates in the app itself, and sets up the first admin at start."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from tests.conftest import TEST_IMAGE, ServeApp
from tests.engine import LiveEngine
from tork_ray.settings import AuthSettings

ADMIN = ("serve-root", "serve-admin-password")
KEY = "serve-test-key"


@pytest.fixture(scope="module")
def serve_url(live_engine: LiveEngine, serve_app: ServeApp) -> str:
    auth = AuthSettings(basic_enabled=True, key_enabled=True, key=KEY, admin_username=ADMIN[0], admin_password=ADMIN[1])
    return serve_app.url_for(replace(live_engine.settings, auth=auth))


def test_a_request_through_ray_serve(serve_url: str, live_engine: LiveEngine) -> None:
    body = f"name: via serve\ntasks:\n  - name: t\n    image: {TEST_IMAGE}\n    run: echo hi\n"
    job_id = live_engine.submit(body)["id"]
    with httpx.Client(base_url=serve_url, timeout=30) as anonymous:
        assert anonymous.get("/health").json()["status"] == "UP"  # open
        assert anonymous.get(f"/jobs/{job_id}").status_code == 401
        keyed = anonymous.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"})
        assert keyed.status_code == 200
    with httpx.Client(base_url=serve_url, timeout=30, auth=ADMIN) as http:
        # Reads from the replica's own store connection, writes through the named coordinator actor.
        assert http.get(f"/jobs/{job_id}").json()["id"] == job_id
        assert http.get("/jobs/" + "0" * 32).json() == {"message": "job not found"}
        r = http.post("/jobs", content=b"name: x", headers={"Content-Type": "text/yaml"})
        assert r.status_code == 400
        assert http.get("/queues/default").json()["name"] == "default"
    live_engine.wait_for(job_id)
