"""The coordinator's side of `worker.executor = "node"` (worker/executor.py): one executor actor per live node
and queue, created when the node is first seen serving the queue, each call sent to the node's executor with
the fewest tasks in flight.

The executors are owned by the coordinator's process: they end with it, and the next coordinator makes its
own (its recovery redelivers what they ran, as for Ray tasks). An executor whose node is no longer alive is
forgotten at the next look at the nodes. One whose call was lost because it died is dropped before the lost
task is retried, and the next launch reads the nodes again and makes a new executor if the node lives: Ray's
own restart would leave a window in which calls fail fast (each spending a retry), whereas calls sent to an
actor being created wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tork_ray.runtime.base import RunRequest
from tork_ray.settings import RuntimeSettings
from tork_ray.worker.executor import QueueExecutorActor

log = logging.getLogger(__name__)

NODES_TTL_SECONDS = 2.0
# An executor not placed this long after it was made is waiting for its queue's slots, which something else on
# the node holds: said once in the log, since its tasks then stay SCHEDULED with nothing else to show why.
PLACEMENT_WARNING_SECONDS = 10.0
# Calls an executor accepts at once beyond its slots: the slots are kept by its threads (one per slot) and by the
# dispatcher's count, so Ray's own limit on the actor never holds a call back on top of them.
SPARE_CALLS = 8


@dataclass
class _Executor:
    handle: Any
    slots: int
    ready: Any  # the ref of its __ray_ready__ call: done once Ray placed the actor and it started
    made_at: float
    placed: bool = False
    warned: bool = False


class ExecutorPool:
    def __init__(self, coordinator_name: str, namespace: str, runtime: RuntimeSettings) -> None:
        self._coordinator_name = coordinator_name
        self._namespace = namespace
        self._runtime = runtime
        self._executors: dict[tuple[str, str], _Executor] = {}  # (node id, resource) -> executor
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._ref_keys: dict[Any, tuple[tuple[str, str], _Executor]] = {}
        self._nodes_read_at = 0.0
        # The queue resources tasks were sent to: executors hold a queue's slots for good, so they are made
        # only for queues this coordinator has work for, never for every queue a node offers.
        self._resources: set[str] = set()

    def launch(self, request: RunRequest, resource: str) -> Any:
        """Sends `request` to the least busy executor of `resource` (a queue resource); the call's ref."""
        self._refresh(force=resource not in self._resources, wanted=resource)
        candidates = [key for key in self._executors if key[1] == resource]
        if not candidates:  # the dispatcher counted a node this view, up to NODES_TTL_SECONDS old, lacks
            self._refresh(force=True, wanted=resource)
            candidates = [key for key in self._executors if key[1] == resource]
        if not candidates:
            raise RuntimeError(f"no live node serves {resource}")
        key = min(candidates, key=lambda k: self._in_flight[k] / self._executors[k].slots)
        executor = self._executors[key]
        ref = executor.handle.run.remote(request)
        self._in_flight[key] += 1
        self._ref_keys[ref] = (key, executor)
        return ref

    def done(self, ref: Any, error: RayError | None) -> None:
        """The call of `ref` ended: answered, cancelled, or lost to `error`."""
        found = self._ref_keys.pop(ref, None)
        if found is None:
            return
        key, executor = found
        self._in_flight[key] -= 1
        if isinstance(error, RayActorError) and self._executors.get(key) is executor:
            # Dropped, and the nodes read again at the next launch: a new executor is made there only if the
            # node is still alive (its process died), never for a node that died with it.
            with contextlib.suppress(RayError):
                ray.kill(executor.handle, no_restart=True)
            del self._executors[key]
            self._nodes_read_at = 0.0

    def check_placement(self) -> list[tuple[str, str]]:
        """The (node id, resource) of the executors still waiting to be placed past PLACEMENT_WARNING_SECONDS,
        each warned of once. Ray places an executor only where all its queue's slots are free, so it waits for
        ever if another engine's executor holds them (another coordinator of `worker.executor = node` on this
        cluster), or Ray tasks or actors of some other program that ask for the queue's resource."""
        now = time.monotonic()
        waiting = []
        for key, executor in self._executors.items():
            if executor.placed:
                continue
            done, _ = ray.wait([executor.ready], timeout=0)
            if done:
                executor.placed = True
            elif now - executor.made_at >= PLACEMENT_WARNING_SECONDS:
                waiting.append(key)
                if not executor.warned:
                    executor.warned = True
                    log.warning(
                        "the executor of %s on node %s is not placed after %.0f s: the %d slot(s) it needs there are "
                        "held by something else (another engine with worker.executor = node on this cluster, or "
                        "other Ray work asking for %s); its tasks wait until they are free",
                        key[1], key[0], now - executor.made_at, executor.slots, key[1],
                    )  # fmt: skip
        return waiting

    def _refresh(self, force: bool, wanted: str) -> None:
        self._resources.add(wanted)
        now = time.monotonic()
        if not force and now - self._nodes_read_at < NODES_TTL_SECONDS:
            return
        self._nodes_read_at = now
        live: dict[tuple[str, str], int] = {}
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            for name, amount in node.get("Resources", {}).items():
                if name in self._resources and int(amount) > 0:
                    live[(node["NodeID"], name)] = int(amount)
        for key in list(self._executors):
            if key not in live:  # its node left: the actor is gone with it
                del self._executors[key]
        for key, slots in live.items():
            if key not in self._executors:
                self._executors[key] = self._create(key[0], key[1], slots)

    def _create(self, node_id: str, resource: str, slots: int) -> _Executor:
        handle: Any = QueueExecutorActor.options(
            resources={resource: float(slots)},
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            num_cpus=0,
            max_restarts=0,  # replaced instead (see done())
            max_task_retries=0,
            max_concurrency=slots + SPARE_CALLS,
        ).remote(self._coordinator_name, self._namespace, self._runtime, slots)
        return _Executor(handle, slots, handle.__ray_ready__.remote(), time.monotonic())
