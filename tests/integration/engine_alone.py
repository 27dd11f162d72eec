"""The coordinator's own Engine, StateWriter and Store with nothing launched (no Ray): its queue has no slot, so
SCHEDULED tasks wait for the test, which plays the worker (`finish`) as run_task reports."""

from __future__ import annotations

import asyncio
from typing import Any

from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.writer import StateWriter
from tork_ray.runtime.base import RunRequest
from tork_ray.store.store import Store


def no_launch(request: RunRequest, resource: str) -> Any:
    raise AssertionError(f"nothing is launched here, but {request.task_id} was")


def idle_engine(url: str, key: str, scope: str, **options: Any) -> Engine:
    """A coordinator on the store at `url` (sealed with `key`); `options` go to the Engine."""
    engine = Engine(StateWriter(Store(url, encryption_key=key)), no_launch, scope=scope, **options)
    engine.dispatcher._capacity = {"default": 0}  # no Ray to ask, and nothing to run on it
    engine.dispatcher._capacity_read_at = float("inf")
    return engine


def finish(engine: Engine, task_id: str) -> None:
    """What a worker reports for a task that ran: its start, then its result (each in a group commit)."""

    async def report() -> None:
        await engine.report_started(task_id, "node-1")
        await engine.on_result(task_id, {"result": "done"})

    asyncio.run(report())
