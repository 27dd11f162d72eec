"""What a lost task left in the container engine, removed by its labels from the coordinator's side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tork_ray.coordinator.recovery import queue_nodes
from tork_ray.domain.states import TASK_TERMINAL
from tork_ray.settings import RuntimeSettings
from tork_ray.store.store import Store
from tork_ray.worker.housekeeping import labelled_task_ids, remove_task_leftovers

log = logging.getLogger(__name__)


async def remove_lost_task_leftovers(scope: str, runtime: RuntimeSettings, task_id: str) -> None:
    """After Ray lost a task (its worker or its node died), its containers may still run: the dead worker's
    watchdog removes them when it can, but a node whose Ray processes were all killed takes the watchdogs along,
    and its host (and Docker) may live on. Each live queue node removes what carries the task's labels; the task
    id is the lost attempt's own, so nothing of its retry (a new task id) is touched."""
    nodes = await asyncio.to_thread(queue_nodes)  # a GCS call: off the coordinator's loop
    strategy = [NodeAffinitySchedulingStrategy(node_id, soft=False) for node_id in nodes]
    refs = [remove_task_leftovers.options(scheduling_strategy=s).remote(scope, task_id, runtime) for s in strategy]
    for ref in refs:
        try:
            await ref
        except ray.exceptions.RayError as exc:  # that node died too, or its engine is down: logged, not raised
            log.warning("removing what lost task %s left failed on a node: %s", task_id, exc)


FinishedFilter = Callable[[list[str]], Awaitable[list[str]]]


async def sweep_node(node_id: str, scope: str, runtime: RuntimeSettings, finished: FinishedFilter) -> int:
    """Removes, on one node, the containers of tasks that are finished (or gone) in the store. A node that joins
    may be a host whose Ray processes died with tasks running (a dead node's containers outlive its watchdogs):
    only the store can say which of them no attempt will ever own again, so the node lists and the coordinator
    chooses. Race-free: a finished task never runs again under its id (a retry is a new task)."""
    on_node = NodeAffinitySchedulingStrategy(node_id, soft=False)
    try:
        ids = await labelled_task_ids.options(scheduling_strategy=on_node).remote(scope, runtime)
        dead = await finished(ids) if ids else []
        for task_id in dead:
            await remove_task_leftovers.options(scheduling_strategy=on_node).remote(scope, task_id, runtime)
    except ray.exceptions.RayError as exc:
        log.warning("sweeping node %s for containers of finished tasks failed: %s", node_id, exc)
        return 0
    if dead:
        log.warning("removed containers of %d finished tasks left on node %s", len(dead), node_id)
    return len(dead)


class NodeSweeper:
    """Sweeps each queue node once when it (re)joins the cluster: what a dead node left behind is found when its
    host serves again, and new nodes cost one small Ray task each."""

    def __init__(self, scope: str, runtime: RuntimeSettings, finished: FinishedFilter) -> None:
        self._scope = scope
        self._runtime = runtime
        self._finished = finished
        self._known: set[str] = set()

    async def check(self) -> int:
        nodes = set(await asyncio.to_thread(queue_nodes))  # a GCS call: off the coordinator's loop
        joined, self._known = nodes - self._known, nodes
        removed = 0
        for node_id in sorted(joined):
            removed += await sweep_node(node_id, self._scope, self._runtime, self._finished)
        return removed


def finished_task_ids(store: Store, task_ids: list[str]) -> list[str]:
    """Of `task_ids`, those whose task is finished or gone in the store (a store read: off the loop)."""
    finished = []
    for task_id in task_ids:
        task = store.get_task(task_id)
        if task is None or task.state in TASK_TERMINAL:
            finished.append(task_id)
    return finished
