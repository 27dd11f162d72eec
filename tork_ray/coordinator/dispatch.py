"""Per-queue backlogs, released to Ray highest priority first as the queue's slots free up."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import ray
from ray.exceptions import (
    NodeDiedError,
    OutOfMemoryError,
    RayActorError,
    RayError,
    TaskCancelledError,
    WorkerCrashedError,
)

from tork_ray.runtime.base import RunRequest

log = logging.getLogger(__name__)

QUEUE_RESOURCE_PREFIX = "queue:"
CAPACITY_TTL_SECONDS = 2.0

# What the dispatcher reports back: (task id, {"result": ...} | {"error": ...} | None when cancelled).
ResultHandler = Callable[[str, dict[str, str] | None], Awaitable[None]]


def queue_resource(queue: str) -> str:
    return f"{QUEUE_RESOURCE_PREFIX}{queue}"


def queue_capacity(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Slots per queue on the nodes that are alive (`ray.nodes()`): a node declared dead offers none, even
    while some total of Ray's resource view still counts it."""
    slots: Counter[str] = Counter()
    for node in nodes:
        if not node.get("Alive"):
            continue
        for name, amount in node.get("Resources", {}).items():
            if name.startswith(QUEUE_RESOURCE_PREFIX):
                slots[name.removeprefix(QUEUE_RESOURCE_PREFIX)] += int(amount)
    return dict(slots)


# What a user reads when Ray lost a task: Ray's own text points at its log files on the node (which a user of
# the API cannot see), so the failures a user can act on are said in our words, Ray's kind kept in brackets.
LOST_REASONS: tuple[tuple[type[RayError], str], ...] = (
    (OutOfMemoryError, "the worker process running the task was killed because its node ran out of memory"),
    (WorkerCrashedError, "the worker process running the task died (killed, or crashed)"),
    (NodeDiedError, "the node running the task died or left the cluster"),
    # worker.executor = "node": the executor actor's process (worker/executor.py) ran the task.
    (RayActorError, "the executor process running the task died (killed, or crashed)"),
)


def lost_error(exc: RayError) -> str:
    """The error of a task whose Ray task was lost (its worker or node died): the coordinator's retry rules
    then decide, as for any failure."""
    for kind, reason in LOST_REASONS:
        if isinstance(exc, kind):
            return f"task lost: {reason} ({type(exc).__name__})"
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"task lost: {type(exc).__name__}: {first_line}"


class NotStarted(Exception):
    """A task was lost with its executor before the coordinator heard of its start (coordinator/executors.py):
    it had not started, or had only just. It is sent again, once, and reports its start at once from then on.
    `certain`: its executor never started at all (never placed), so neither did the task: sent again as it was,
    however often that happens (a node that dies before its executor starts, or an executor made on a node
    that is dying)."""

    def __init__(self, cause: RayError, certain: bool = False) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.certain = certain


@dataclass(order=True)
class _Entry:
    sort_key: tuple[int, int]
    task_id: str = field(compare=False)
    request: RunRequest = field(compare=False)


@dataclass
class QueueInfo:
    name: str
    size: int
    subscribers: int
    unacked: int


class Dispatcher:
    """Ray has no priorities, so the coordinator holds each queue's backlog and feeds Ray only what fits."""

    def __init__(self, launch: Callable[[RunRequest, str], Any], on_result: ResultHandler) -> None:
        self._launch = launch
        self._on_result = on_result
        self._backlogs: dict[str, list[_Entry]] = {}
        self._running: dict[str, tuple[str, Any, _Entry]] = {}  # task id -> (queue, object ref, entry)
        self._seq = itertools.count()
        self._capacity: dict[str, int] = {}
        self._capacity_read_at = 0.0
        self._waiters: set[asyncio.Task[None]] = set()
        # Running tasks per queue, kept beside _running so a pump never counts them one by one.
        self._running_per_queue: Counter[str] = Counter()
        self._queued: set[str] = set()  # ids in the backlogs, so that a task is never queued twice
        # Called with the id of a task Ray lost (its worker or node died), beside the result handler: the
        # coordinator removes what the task may have left running (coordinator/leftovers.py).
        self.on_lost: Callable[[str], Coroutine[Any, Any, None]] | None = None
        # False once the coordinator's own node is gone (coordinator/own_node.py): a loss seen then is not
        # stored; `on_own_node_gone` ends the process instead.
        self.own_node_alive: Callable[[], bool] = lambda: True
        # Told of each launched ref once its call has ended, with the Ray error that lost it, if one did (the
        # executors' in-flight counts, and their replacement: coordinator/executors.py).
        self.on_finished: Callable[[Any, RayError | None], None] = lambda _ref, _error: None
        self.on_own_node_gone: Callable[[str], None] = lambda _task_id: None
        # Tasks a queue may have in flight per slot: 1 for Ray tasks; more for executors, which queue the rest.
        self.in_flight_per_slot: Callable[[str], int] = lambda _queue: 1
        # Stops the run behind a launched ref: Ray's cancel for a Ray task, the executor's for its tasks.
        # Not force=True: that kills the worker before the runtime's `finally` removes the container.
        self.cancel_run: Callable[[Any], None] = lambda ref: ray.cancel(ref, force=False)

    def enqueue(self, task_id: str, queue: str, priority: int, request: RunRequest) -> None:
        if task_id in self._running or task_id in self._queued:
            return  # queued already (a recovery attempt that was retried queues its tasks again)
        self._queued.add(task_id)
        entry = _Entry((-priority, next(self._seq)), task_id, request)
        heapq.heappush(self._backlogs.setdefault(queue, []), entry)
        self.pump(queue)

    def cancel(self, task_id: str) -> bool:
        """Drops a queued task or interrupts a running one; True if it was ours."""
        if task_id in self._running:
            self.cancel_run(self._running[task_id][1])
            return True
        if task_id not in self._queued:  # not ours, or already gone: no backlog to scan
            return False
        for queue, backlog in self._backlogs.items():
            kept = [entry for entry in backlog if entry.task_id != task_id]
            if len(kept) != len(backlog):
                self._queued.discard(task_id)
                heapq.heapify(kept)
                self._backlogs[queue] = kept
                return True
        return False

    def running_ids(self) -> list[str]:
        return list(self._running)

    def pump(self, queue: str) -> None:
        backlog = self._backlogs.get(queue)
        while backlog and self._free_slots(queue) > 0:
            entry = backlog[0]
            try:
                ref = self._launch(entry.request, queue_resource(queue))
            except Exception:  # left queued: the pump loop tries again (coordinator/actor.py PUMP_SECONDS)
                log.exception("launching task %s failed; it stays queued", entry.task_id)
                return
            heapq.heappop(backlog)
            self._queued.discard(entry.task_id)
            self._running[entry.task_id] = (queue, ref, entry)
            self._running_per_queue[queue] += 1
            waiter = asyncio.get_running_loop().create_task(self._await(entry, queue, ref))
            self._waiters.add(waiter)
            waiter.add_done_callback(self._waiters.discard)

    def pump_all(self) -> None:
        for queue in list(self._backlogs):
            self.pump(queue)

    def queues(self) -> list[QueueInfo]:
        self._refresh_capacity(force=True)
        names = set(self._capacity) | set(self._backlogs) | {queue for queue, _, _ in self._running.values()}
        return [self.queue_info(name) for name in sorted(names)]

    def queue_info(self, name: str) -> QueueInfo:
        self._refresh_capacity()
        running = self._running_per_queue[name]
        return QueueInfo(name, len(self._backlogs.get(name, [])), self._capacity.get(name, 0), running)

    def find_queue(self, name: str) -> QueueInfo | None:
        """The queue if anything knows it: a node serves it, or tasks wait in it or run from it."""
        self._refresh_capacity(force=True)
        if name not in self._capacity and name not in self._backlogs and not self._running_per_queue[name]:
            return None
        return self.queue_info(name)

    def purge(self, queue: str) -> list[str]:
        """Empties a queue's backlog; returns the task ids that were waiting."""
        ids = [entry.task_id for entry in self._backlogs.pop(queue, [])]
        self._queued.difference_update(ids)
        return ids

    def _free_slots(self, queue: str) -> int:
        self._refresh_capacity()
        return self._capacity.get(queue, 0) * self.in_flight_per_slot(queue) - self._running_per_queue[queue]

    def _refresh_capacity(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._capacity_read_at < CAPACITY_TTL_SECONDS:
            return
        self._capacity_read_at = now
        self._capacity = queue_capacity(ray.nodes())

    def _clean_after(self, task_id: str) -> None:
        if self.on_lost is None:
            return
        cleaner = asyncio.get_running_loop().create_task(self.on_lost(task_id))
        self._waiters.add(cleaner)
        cleaner.add_done_callback(self._waiters.discard)

    async def _await(self, entry: _Entry, queue: str, ref: Any) -> None:
        task_id = entry.task_id
        outcome: dict[str, str] | None = None
        lost: RayError | None = None
        again: RunRequest | None = None
        try:
            outcome = await ref
        except TaskCancelledError:
            outcome = None
        except NotStarted as exc:  # its executor died: sent again once, unless it must report its start at once
            if exc.certain:
                again = entry.request
            elif entry.request.start_report_delay > 0:
                again = replace(entry.request, start_report_delay=0.0)
            else:
                lost = exc.cause
        except RayError as exc:  # the worker or its node died: the coordinator's retry rules decide
            lost = exc
        finally:
            self._running.pop(task_id, None)
            self._running_per_queue[queue] -= 1
            self.on_finished(ref, lost)
        if again is not None:  # queued again as it was, with its priority (and pumped at once)
            log.warning("task %s is sent again: its executor died before it was heard to start", task_id)
            self.enqueue(task_id, queue, -entry.sort_key[0], again)
            return
        if lost is not None:
            if not self.own_node_alive():  # no: the coordinator's own node died, and the tasks with it
                self.on_own_node_gone(task_id)
                return
            log.warning("task %s lost: %s", task_id, lost)  # in full, for an operator; the user reads lost_error
            outcome = {"error": lost_error(lost)}
            self._clean_after(task_id)
            # Its node may be gone: read the capacity again before the pump below fills slots, rather than
            # trust a read up to CAPACITY_TTL_SECONDS old. This narrows the window, it does not close it: Ray
            # reports the loss once the node's raylet stops answering, and lists the node alive (its slots
            # with it) until its health checks declare it dead.
            self._capacity_read_at = 0.0
        try:
            await self._on_result(task_id, outcome)
        except Exception:
            # The handler rolled its event back and failed the job (Engine.run); logged here too, so that
            # nothing raised in this background task goes unseen.
            log.exception("handling the result of task %s failed", task_id)
        finally:
            self.pump(queue)
