"""Integration tests share the session engine of tests/conftest.py; these names are kept importable here."""

from __future__ import annotations

from collections.abc import Iterator
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
