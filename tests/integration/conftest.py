"""Integration tests share the session engine of tests/conftest.py; these names are kept importable here."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.engine import QUEUES, LiveEngine, free_port

__all__ = ["QUEUES", "LiveEngine", "free_port"]

# What the shell-runtime engine's users need of it: the shell runtime, limits.depth 1 (test_paths.py) and a
# host variable that must not reach a task (test_runtime_engines.py). Neither's checks depend on the other's.
SHELL_ENGINE_ENV = {"TORK_RUNTIME_TYPE": "shell", "TORK_LIMITS_DEPTH": "1", "HOST_ONLY_SECRET": "must-not-leak"}


@pytest.fixture(scope="session")
def shell_engine(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[httpx.Client]:
    """One `make run` engine on the shell runtime (its own process and Ray), shared by the tests that need one:
    an engine's cold start is among the slowest steps of the suite."""
    from tests.integration.test_runtime_engines import engine_with

    with engine_with(tmp_path_factory.mktemp("shell_engine"), SHELL_ENGINE_ENV) as http:
        yield http


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def no_container_outlives_a_failed_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that fails while a gated container runs (tests/integration/gates.py) leaves it running for good; the
    tests after it that check for leftovers would all fail with it. Its failure is reported; its containers go."""
    began = time.time()
    yield
    if not request.node.stash.get(CALL_FAILED, False):
        return
    with contextlib.suppress(Exception):  # no Docker here: nothing of the test's can be running in it either
        import docker

        client = docker.from_env()
        for container in client.containers.list(filters={"label": "tork_ray.managed=true"}, ignore_removed=True):
            created = datetime.fromisoformat(container.attrs["Created"][:26].rstrip("Z") + "+00:00")
            if created.timestamp() >= began - 1:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
