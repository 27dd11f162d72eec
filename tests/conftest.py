"""Shared fixtures: real services or, outside CI, a clear skip; in CI (CI=true) a missing service fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine import QUEUES, TEST_LINGER, LiveEngine, free_port
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.coordinator.actor import start_coordinator
from tork_ray.settings import ApiSettings, DatastoreSettings, RaySettings, Settings, WorkerSettings
from tork_ray.standalone import engine as run_engine
from tork_ray.store.store import open_store
from tork_ray.webhooks.config import WebhookSettings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_IMAGE = os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest")
SESSION_KEY = "tork-ray test session key"
WEBHOOK_SECRET = "tork-ray test webhook signing secret"

# Tests never want Ray's token auth or its dashboard.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def require(ok: bool, what: str) -> None:
    """A missing service fails in CI and skips elsewhere (where `make test` was not used to set it up)."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true): `make test` should have provided it")
    pytest.skip(f"{what} is not available; run `make test` to set it up")


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    import docker

    try:
        client = docker.from_env()
        client.ping()
        client.images.get(TEST_IMAGE)
        ok = True
    except Exception:
        ok = False
    require(ok, f"a Docker engine with the test image {TEST_IMAGE}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def live_engine(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[LiveEngine]:
    """The one engine of the test session, shared by integration and end-to-end tests."""
    data_dir: Path = tmp_path_factory.mktemp("engine")
    settings = Settings(
        data_dir=data_dir,
        queues=QUEUES,
        ray=RaySettings(namespace=f"tork_test_{uuid.uuid4().hex[:8]}", num_cpus=2),
        # The whole suite runs with encryption at rest, so every test exercises the sealed columns (the
        # keyless store is tested on its own: tests/integration/test_store_encryption.py).
        datastore=DatastoreSettings(encryption_key=SESSION_KEY),
        # Signed webhook calls, and retries 0.2, 0.4, ... s apart instead of Tork's 2, 4, ... s.
        webhooks=WebhookSettings(secret=WEBHOOK_SECRET, retry_delay="200ms"),
        # The port the API is served on below: the coordinator tells it to Ray programs (tork_ray.submit()).
        api=ApiSettings(port=free_port()),
        worker=WorkerSettings(linger=TEST_LINGER),
    )
    with run_engine(settings) as coordinator:
        store = open_store(settings)
        app = create_app(settings, coordinator, store)
        with serve_in_thread(app, port=settings.api.port) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield LiveEngine(settings, coordinator, store, http)


@pytest.fixture(scope="session")
def pg_engine(live_engine: LiveEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveEngine]:
    """The session engine's twin on PostgreSQL (a fresh database), made the first time a test asks for it.

    One Ray cluster per session, so it shares live_engine's: its own coordinator actor (another namespace,
    so neither's orphan sweep touches the other's containers), its own store and API, the same settings."""
    import ray

    from tests.postgres import fresh_database

    with fresh_database("engine") as url:
        base = live_engine.settings
        settings = replace(
            base,
            data_dir=tmp_path_factory.mktemp("pg_engine"),
            ray=replace(base.ray, namespace=f"{base.ray.namespace}_pg"),
            datastore=replace(base.datastore, type="postgres", postgres_dsn=url),
        )
        coordinator = start_coordinator(settings)
        store = open_store(settings)
        try:
            app = create_app(settings, coordinator, store)
            with serve_in_thread(app) as api, httpx.Client(base_url=api, timeout=60) as http:
                yield LiveEngine(settings, coordinator, store, http)
        finally:
            ray.get(coordinator.shutdown.remote(), timeout=30)
            ray.kill(coordinator)
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def live_engine_both(request: pytest.FixtureRequest) -> LiveEngine:
    """The session engine on SQLite, then its twin on PostgreSQL: a test taking this runs on both stores."""
    engine: LiveEngine = request.getfixturevalue("live_engine" if request.param == "sqlite" else "pg_engine")
    return engine


class ServeApp:
    """Ray Serve on the session's cluster, started once (its controller and HTTP proxy); `url_for(settings)`
    deploys the API with those settings, replacing the running app only when they differ (a new replica, the
    same controller and proxy)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._deployed: Settings | None = None

    def url_for(self, settings: Settings) -> str:
        import time

        from tork_ray.api.serve import deploy

        if settings != self._deployed:
            began = time.monotonic()
            deploy(settings, host="127.0.0.1", port=self.port)
            self._deployed = settings
            print(f"Serve deployment ready in {time.monotonic() - began:.1f}s")  # a figure
        return self.url


@pytest.fixture(scope="session")
def serve_app(live_engine: LiveEngine) -> Iterator[ServeApp]:
    """Shared by tests/integration/test_api_serve.py (auth on) and tests/ui (auth off): a Serve start costs a
    controller, a proxy and a replica (~10 s, far more under load); shut down at the end of the session."""
    from ray import serve

    try:
        yield ServeApp()
    finally:
        serve.shutdown()
