"""A task's result reaches the coordinator only after its last log part is stored: whoever sees the task
finished sees its whole log (the coordinator stores parts on its I/O thread, off the path of the result)."""

from __future__ import annotations

import asyncio

import ray

from tests.engine import LiveEngine
from tests.integration.test_runtime_shell import SHELL, request
from tork_ray.worker.task import execute


@ray.remote(num_cpus=0)
class SlowLogStore:
    """Stands in for the coordinator actor; storing a log part takes a while, as a busy store's does."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def append_log(self, task_id: str, contents: str) -> None:
        await asyncio.sleep(1.0)
        self.stored.append(contents)

    async def task_started(self, task_id: str, node_id: str, started_at: str | None = None) -> None:
        return None

    async def task_progress(self, task_id: str, value: float) -> None:
        return None

    def logs(self) -> str:
        return "".join(self.stored)


@ray.remote(num_cpus=0, max_retries=0)
def run_with(coordinator: object, run: str) -> dict[str, str]:
    return execute(request(run), coordinator, SHELL, "node")


def test_the_result_waits_for_the_last_log_part(live_engine: LiveEngine) -> None:
    store = SlowLogStore.remote()  # type: ignore[attr-defined]
    outcome = ray.get(run_with.remote(store, "echo first words; echo last words"), timeout=60)
    assert outcome["result"] == ""
    assert "last words" in ray.get(store.logs.remote(), timeout=30)
