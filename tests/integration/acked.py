"""A coordinator Engine (no Ray: a launch of our own) in a process that SIGKILLs itself the moment something is
acknowledged: `python -m tests.integration.acked <db> <mode>`. The test then reads what the store holds.

Modes: `started`: a parallel of GROUP tasks, all launched; every task reports its start in the same loop turn
(one group commit); at the first acknowledgement the process dies. `result`: GROUP jobs of two tasks each; the
first tasks' results arrive in one loop turn; at the first launch of a second task (which may leave the
coordinator only once the result that explains it is durable) the process dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.writer import StateWriter
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.models import JobInput
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store

GROUP = 20


def spec(body: dict[str, Any]) -> JobInput:
    return parse_job(json.dumps(body).encode(), "application/json")


def engine(db: str, launch: Any, slots: int) -> Engine:
    made = Engine(StateWriter(Store(f"sqlite:///{db}")), launch, scope="acked")
    made.dispatcher._capacity = {"default": slots}  # no Ray to ask
    made.dispatcher._capacity_read_at = float("inf")
    return made


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def started(db: str) -> None:
    launched: list[str] = []

    def launch(request: RunRequest, resource: str) -> Any:
        launched.append(request.task_id)
        return asyncio.get_running_loop().create_future()  # runs for ever

    coordinator = engine(db, launch, GROUP)
    coordinator.submit(
        spec({"name": "p", "tasks": [{"name": "p", "parallel": {"tasks": [{"name": "t", "run": "true"}] * GROUP}}]})
    )
    while len(launched) < GROUP:
        await asyncio.sleep(0)

    async def report(task_id: str) -> None:
        await coordinator.report_started(task_id, "node-1")
        Path(f"{db}.acked").write_text(task_id)
        die()  # right after the acknowledgement: nothing later may be what made it durable

    await asyncio.gather(*(report(task_id) for task_id in launched))


async def result(db: str) -> None:
    runs: dict[str, asyncio.Future[dict[str, str]]] = {}

    def launch(request: RunRequest, resource: str) -> Any:
        if len(runs) >= GROUP:  # a second task leaves the coordinator: its cause must be stored by now
            Path(f"{db}.acked").write_text(request.task_id)
            die()
        runs[request.task_id] = asyncio.get_running_loop().create_future()
        return runs[request.task_id]

    coordinator = engine(db, launch, 2 * GROUP)
    for index in range(GROUP):
        coordinator.submit(
            spec({"name": f"j{index}", "tasks": [{"name": "first", "run": "true"}, {"name": "second", "run": "true"}]})
        )
    while len(runs) < GROUP:
        await asyncio.sleep(0)
    for task_id in runs:
        await coordinator.report_started(task_id, "node-1")
    for future in runs.values():  # every result in the same loop turn
        future.set_result({"result": "done"})
    await asyncio.sleep(3600)  # the launch above ends the process


if __name__ == "__main__":
    asyncio.run({"started": started, "result": result}[sys.argv[2]](sys.argv[1]))
