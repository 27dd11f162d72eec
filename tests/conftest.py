"""Shared fixtures: real services or, outside CI, a clear skip; in CI (CI=true) a missing service fails."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_IMAGE = os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest")

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
