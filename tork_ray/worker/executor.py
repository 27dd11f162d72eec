"""A long-lived executor per node and queue (`worker.executor = "node"`): one actor process that holds all of a
queue's slots on its node (its `queue:<name>` resources) and runs the queue's tasks there on threads, instead
of one Ray task per Tork task (`"task"`, the default).

What it saves is Ray's per-task work: no worker lease, no task placement, no function and arguments resolved
in a fresh task context; a task is one actor call whose answer is its outcome. Measured raw on two cores
(benchmarks/shell_bench.py `ray_actor`): 6.0 ms a call sequentially against 10.7 ms a Ray task.

What stays the same: the queue's slots are Ray resources (the executor holds them, so no node runs more of a
queue's tasks than it offers), a task is run by `execute` as in a Ray task (start report, log shipping,
node defaults, the reaper beside the process), cancel is `ray.cancel` of the call (the runtime's cancel probe
turns true, and the runtime removes what it started before the call ends), and a dead executor loses the
tasks it ran (`RayActorError`), which the coordinator redelivers by their rules like any lost task.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import ray

from tork_ray.errors import TorkError
from tork_ray.runtime.base import RunRequest
from tork_ray.settings import RuntimeSettings
from tork_ray.worker.start_report import started_now, with_start
from tork_ray.worker.task import execute, node_identity, node_settings


class QueueExecutor:
    """Runs up to `slots` tasks at once, each on a thread of its own."""

    def __init__(self, coordinator_name: str, namespace: str, runtime: RuntimeSettings, slots: int) -> None:
        self._coordinator = ray.get_actor(coordinator_name, namespace=namespace)
        self._runtime = runtime
        self._node_id = node_identity()["nodeId"]
        # One thread per slot: the coordinator never sends more at once than the slots it counts.
        self._threads = ThreadPoolExecutor(max_workers=max(1, slots), thread_name_prefix="tork-task")

    async def run(self, request: RunRequest) -> dict[str, str]:
        """One task's outcome, as run_task's. A cancel (`ray.cancel` of this call) stops the task at the
        runtime's next wait; the call ends, cancelled, once the runtime has removed what it started."""
        try:
            settings = node_settings(self._runtime)
        except TorkError as exc:  # this node's own TORK_* variables are wrong: every task here fails, saying why
            return with_start({"error": exc.message}, self._node_id, started_now())
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(
            self._threads, execute, request, self._coordinator, settings, self._node_id, cancelled.is_set
        )
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            cancelled.set()
            # The runtime ends with its own KeyboardInterrupt once it has removed what it started.
            with contextlib.suppress(BaseException):
                await running
            raise


QueueExecutorActor = ray.remote(QueueExecutor)
