"""The coordinator's side of `worker.executor = "node"` (worker/executor.py): one executor actor per live node
and queue, created when the node is first seen serving the queue, each task sent to the node's executor with
the fewest tasks in flight.

Messages are per batch: the tasks released in one turn of the coordinator's loop go to each executor in one
`submit` call, sent at the end of the turn, and the executors report outcomes in batches (`Coordinator.report`).
An executor on the coordinator's own node gets a direct channel once it has started (coordinator/channels.py):
the same messages then go over a Unix socket, ~20 times cheaper than an actor call each way, and Ray's calls
remain for the rest (its start, its death, its stop, and every executor on another node).
A launch answers with an asyncio future of the task's outcome, which the dispatcher awaits as it awaits a Ray
task's ref: an outcome, None when the task was cancelled, or an error when the executor died.

How a death is seen: each executor has one call in flight that never answers (`until_stopped`); when the
executor dies, that call fails, and so does every task it had not reported. A task whose start the
coordinator had heard of (from the executor's reports, or its own start report) is lost, with the executor's
RayActorError, and the coordinator's retry rules decide, as for a killed worker. One it had not heard of had
not started, or started within the last start_report_delay: it is sent again (NotStarted), once, and reports
its start at once from then on, as recovery does with a task stored SCHEDULED (Engine.requeue).

An executor with no task for worker.linger stops (IDLE_SECONDS, below). The executors are owned by the
coordinator's process: they end with it, and the next coordinator makes its
own (its recovery redelivers what they ran, as for Ray tasks). An executor whose node is no longer alive is
forgotten at the next look at the nodes. A dead one is dropped, and the next launch reads the nodes again and
makes a new executor if the node lives: Ray's own restart would leave a window in which calls fail fast,
whereas calls sent to an actor being created wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, NodeDiedError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tork_ray.coordinator.channels import Channel, ChannelServer
from tork_ray.coordinator.dispatch import NotStarted, queue_resource
from tork_ray.runtime.base import RunRequest
from tork_ray.settings import RuntimeSettings
from tork_ray.worker.channel import ChannelClosed
from tork_ray.worker.executor import Outcome, QueueExecutorActor

log = logging.getLogger(__name__)

NODES_TTL_SECONDS = 2.0
# An executor not placed this long after it was made is waiting for its queue's slots, which something else on
# the node holds: said once in the log, since its tasks then stay SCHEDULED with nothing else to show why.
PLACEMENT_WARNING_SECONDS = 10.0
# Calls an executor serves at once: submits, cancels and the one that waits for its death, all short.
MAX_CALLS = 16
# Tasks in flight per slot of a queue's executors (Dispatcher.in_flight_per_slot): one running, the others queued
# in the executor, so that a slot that frees starts its next task at once and the coordinator's sends and the
# executors' reports carry many short tasks each (a parallel of 200 trivial tasks on 2 slots, alternated runs:
# 4 a slot 206-268 tasks/s, 16 a slot 343-346). Bounded by time: a task waits in an executor's queue, behind the
# tasks sent before it whatever its priority, about QUEUE_SECONDS at most by the queue's mean run time so far;
# tasks that run longer than that get none queued behind them. An executor's death sends its queued tasks again.
QUEUE_SECONDS = 0.1
MAX_IN_FLIGHT_PER_SLOT = 16
FIRST_IN_FLIGHT_PER_SLOT = 2  # before any task of the queue has run
# An executor with no task in flight this long is stopped, giving its queue's slots back to the node: to
# another engine on the cluster that wants them, to Ray tasks of other programs, and to an autoscaler, which
# sees a node whose slots are held as busy and never removes it. The next task makes a new executor (about
# 0.3 s on this machine, against a process that otherwise stays for good). worker.linger sets it.
IDLE_SECONDS = 10.0
RUN_TIME_WEIGHT = 0.3  # of each report's mean, in the queue's mean run time (a moving average)
UNAVAILABLE_RETRY_SECONDS = 0.5  # between two asks of an executor Ray says is unavailable
STOP_WAIT_SECONDS = 5.0  # how long stop_all waits for executors still starting
# An executor on the coordinator's node gets a direct channel once started (worker/channel.py). A dead one's
# channel is read to its end, for at most this, before its tasks are ended: what it reported before it died counts.
CHANNEL_DRAIN_SECONDS = 2.0


@dataclass
class _Executor:
    handle: Any
    slots: int
    ready: Any  # the ref of its __ray_ready__ call: done once Ray placed the actor and it started
    made_at: float
    placed: bool = False
    warned: bool = False
    outbox: list[RunRequest] = field(default_factory=list)  # sent at the end of the loop turn
    dead: bool = False
    idle_since: float | None = None  # since when it has had no task in flight (None: it has some)
    token: str = ""  # sent with its reports (report())
    channel: Channel | None = None  # its direct channel (worker/channel.py), once open; else Ray's calls
    opening: bool = False  # its channel is being opened: what is sent to it waits in the outbox meanwhile


@dataclass
class _Pending:
    key: tuple[str, str]
    executor: _Executor
    future: asyncio.Future[dict[str, str] | None]
    started: bool = False


class ExecutorPool:
    def __init__(
        self,
        coordinator_name: str,
        namespace: str,
        runtime: RuntimeSettings,
        linger_seconds: float = IDLE_SECONDS,
        own_node: str | None = None,
    ) -> None:
        """`own_node`: the id of the coordinator's node, whose executors get a direct channel (None: none do)."""
        self._linger_seconds = linger_seconds
        self._coordinator_name = coordinator_name
        self._namespace = namespace
        self._runtime = runtime
        self._executors: dict[tuple[str, str], _Executor] = {}  # (node id, resource) -> executor
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._pending: dict[str, _Pending] = {}  # task id -> its launch, until its outcome or the executor's death
        self._futures: dict[asyncio.Future[dict[str, str] | None], str] = {}  # the launch's answer -> task id
        self._nodes_read_at = 0.0
        # The queue resources tasks were sent to: executors hold a queue's slots for good, so they are made
        # only for queues this coordinator has work for, never for every queue a node offers.
        self._resources: set[str] = set()
        self._sending = False
        self._watchers: set[asyncio.Task[None]] = set()
        self._run_seconds: dict[str, float] = {}  # resource -> the mean run time of its tasks (moving)
        self._stopping = False  # stop_all() was called
        self._own_node = own_node
        self.reports: Counter[str] = Counter()  # the executors' reports by how they came (report())
        self._channels: asyncio.Future[ChannelServer | None] | None = None  # started by the first on this node

    def in_flight_per_slot(self, queue: str) -> int:
        """How many of `queue`'s tasks may be in flight per slot (see QUEUE_SECONDS)."""
        mean = self._run_seconds.get(queue_resource(queue))
        if mean is None:
            return FIRST_IN_FLIGHT_PER_SLOT
        return 1 + min(MAX_IN_FLIGHT_PER_SLOT - 1, int(QUEUE_SECONDS / max(mean, 1e-6)))

    def launch(self, request: RunRequest, resource: str) -> asyncio.Future[dict[str, str] | None]:
        """Sends `request` to the least busy executor of `resource` (a queue resource), with the others of this
        loop turn; a future of its outcome (None if cancelled), failed if the executor dies first."""
        self._refresh(force=resource not in self._resources, wanted=resource)
        candidates = [key for key in self._executors if key[1] == resource]
        if not candidates:  # the dispatcher counted a node this view, up to NODES_TTL_SECONDS old, lacks
            self._refresh(force=True, wanted=resource)
            candidates = [key for key in self._executors if key[1] == resource]
        if not candidates:
            raise RuntimeError(f"no live node serves {resource}")
        key = min(candidates, key=lambda k: self._in_flight[k] / self._executors[k].slots)
        executor = self._executors[key]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, str] | None] = loop.create_future()
        executor.outbox.append(request)
        executor.idle_since = None
        self._in_flight[key] += 1
        self._pending[request.task_id] = _Pending(key, executor, future)
        self._futures[future] = request.task_id
        if not self._sending:
            self._sending = True
            loop.call_soon(self._send)
        return future

    def cancel(self, future: Any) -> None:
        """Stops the task launched as `future`: its outcome comes back None once it has stopped."""
        task_id = self._futures.get(future)
        pending = self._pending.get(task_id) if task_id is not None else None
        if task_id is None or pending is None or pending.executor.dead:
            return
        executor = pending.executor
        unsent = [request for request in executor.outbox if request.task_id != task_id]
        if len(unsent) < len(executor.outbox):  # not sent yet: it never will be
            executor.outbox = unsent
            self._settle(task_id, None)
            return
        if executor.channel is not None:
            executor.channel.send(("cancel", task_id))
        else:
            executor.handle.cancel.remote(task_id)

    def started(self, task_ids: list[str]) -> None:
        """The tasks' starts were heard of: should their executor die, they are lost, not sent again."""
        for task_id in task_ids:
            pending = self._pending.get(task_id)
            if pending is not None:
                pending.started = True

    def report(
        self,
        started: list[str],
        outcomes: list[Outcome],
        run_seconds: float | None = None,
        executor: str = "",
        via: str = "ray",
    ) -> None:
        """An executor's report: the starts and the outcomes since its last one, and the mean run time of
        those outcomes' tasks (None if none ran). `executor` is its token: only what this pool sent to that very
        executor is settled by it. An executor of the coordinator's previous process may still report for a
        moment after a restart, about a task the new process has sent again under the same id: that outcome is
        an old attempt's, and must not settle the new one. `via`: how it came ("ray", "channel"), counted."""
        self.reports[via] += 1
        mine = [task_id for task_id in started if self._sent_to(task_id, executor)]
        self.started(mine)
        outcomes = [(task_id, outcome) for task_id, outcome in outcomes if self._sent_to(task_id, executor)]
        pending = self._pending.get(outcomes[0][0]) if outcomes else None
        if pending is not None and run_seconds is not None:
            resource = pending.key[1]
            mean = self._run_seconds.get(resource)
            self._run_seconds[resource] = run_seconds if mean is None else mean + RUN_TIME_WEIGHT * (run_seconds - mean)
        for task_id, outcome in outcomes:
            self._settle(task_id, outcome)

    def _sent_to(self, task_id: str, token: str) -> bool:
        pending = self._pending.get(task_id)
        return pending is not None and pending.executor.token == token

    def done(self, future: Any, _error: RayError | None) -> None:
        """The dispatcher is done with the launch `future`: answered, cancelled, or lost."""
        task_id = self._futures.pop(future, None)
        pending = self._pending.pop(task_id, None) if task_id is not None else None
        if pending is not None:
            self._in_flight[pending.key] -= 1
            if not self._in_flight[pending.key]:
                pending.executor.idle_since = time.monotonic()

    def _settle(self, task_id: str, outcome: dict[str, str] | None) -> None:
        pending = self._pending.get(task_id)
        if pending is not None and not pending.future.done():
            pending.future.set_result(outcome)

    def _send(self) -> None:
        """End of the loop turn: each executor's tasks of this turn, in one call."""
        self._sending = False
        for executor in list(self._executors.values()):
            if executor.outbox and not executor.dead and not executor.opening:
                requests, executor.outbox = executor.outbox, []
                if executor.channel is not None:
                    executor.channel.send(("submit", requests))
                else:
                    executor.handle.submit.remote(requests)

    async def _watch(self, key: tuple[str, str], executor: _Executor) -> None:
        try:
            try:
                await executor.ready
            except RayError as exc:  # it never started: neither did any task sent to it
                self._died(key, executor, exc, never_started=True)
                return
            executor.placed = True
            if key[0] == self._own_node:
                await self._open_channel(key, executor)
            while True:
                try:
                    await executor.handle.until_stopped.remote()
                except ActorUnavailableError:
                    # Unreachable for now (a network fault, or its node dying before the GCS declares it dead):
                    # not a death, whose tasks would run twice. Asked again until it answers or is dead.
                    await asyncio.sleep(UNAVAILABLE_RETRY_SECONDS)
        except RayError as exc:
            if executor.channel is not None:  # what it sent before it died is read first
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(executor.channel.closed.wait(), CHANNEL_DRAIN_SECONDS)
            self._died(key, executor, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # never expected: the executor is treated as dead rather than trusted blindly
            log.exception("watching the executor of %s on node %s failed", key[1], key[0])
            self._died(key, executor, RayError(f"the executor of {key[1]} on node {key[0]} could not be watched"))

    async def _open_channel(self, key: tuple[str, str], executor: _Executor) -> None:
        """Gives the executor its direct channel. What is sent to it waits meanwhile, so that nothing sent on the
        channel overtakes what Ray's calls still carry to it (Ray runs one caller's calls to an actor in order, and
        open_channel answers after those sent before it). Failing that, Ray's calls carry on."""
        if self._channels is None:  # one server for all: executors placed at once wait for the same start
            self._channels = asyncio.ensure_future(ChannelServer.started())
        server = await self._channels
        if server is None:
            self._own_node = None  # not tried again
            return

        async def serve(channel: Channel) -> None:
            executor.channel = channel
            await self._serve_channel(key, executor, channel)

        executor.opening = True
        try:
            if not await server.open(executor.handle, executor.token, serve):
                log.warning("the channel to the executor of %s on node %s did not open: Ray calls carry on", *key[::-1])
        finally:
            executor.opening = False
            if executor.outbox and not self._sending:
                self._sending = True
                asyncio.get_running_loop().call_soon(self._send)

    async def _serve_channel(self, key: tuple[str, str], executor: _Executor, channel: Channel) -> None:
        """Reads the executor's reports until its channel closes. A channel that closes while its executor lives
        (never seen: both ends are on this node) stops the executor, whose death then ends its tasks as usual:
        what was sent on the channel meanwhile may be lost, and only a death says which tasks to run again."""
        try:
            while True:
                message = await channel.receive()
                if message[0] == "report":
                    _, started, outcomes, mean = message
                    self.report(started, outcomes, mean, executor.token, via="channel")
                    channel.send(("ack",))
        except ChannelClosed:
            pass
        except Exception:
            log.exception("the channel of the executor of %s on node %s failed", key[1], key[0])
        finally:
            executor.channel = None
            if not executor.dead and not self._stopping and self._executors.get(key) is executor:
                log.warning("the channel of the executor of %s on node %s closed while it lived: stopped", *key[::-1])
                with contextlib.suppress(RayError):
                    ray.kill(executor.handle, no_restart=True)

    def _died(self, key: tuple[str, str], executor: _Executor, error: RayError, never_started: bool = False) -> None:
        """Every task the executor had not reported ends: lost if it had started, sent again if not."""
        if self._stopping:
            return  # stop_all: the engine is stopping, and its tasks are for its next start
        ended = [p for p in self._pending.values() if p.executor is executor and not p.future.done()]
        # The node table is read only when some task's error depends on it: not for an executor stopped idle.
        if ended and not _node_alive(key[0]):
            # The actor's death says so only in its text: the tasks' error names the node's death, as a Ray
            # task's would (dispatch.LOST_REASONS).
            error = NodeDiedError(f"node {key[0]} died with the executor of {key[1]}: {error}")
        executor.dead = True
        executor.outbox = []
        if self._executors.get(key) is executor:
            # Dropped, and the nodes read again at the next launch: a new executor is made there only if the
            # node is still alive (its process died), never for a node that died with it.
            with contextlib.suppress(RayError):
                ray.kill(executor.handle, no_restart=True)
            del self._executors[key]
            self._nodes_read_at = 0.0
        for pending in ended:
            pending.future.set_exception(error if pending.started else NotStarted(error, never_started))

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

    def stop_idle(self, idle_seconds: float | None = None) -> list[tuple[str, str]]:
        """Stops the executors that had no task in flight for `idle_seconds` (worker.linger; see IDLE_SECONDS);
        their keys."""
        idle_seconds = self._linger_seconds if idle_seconds is None else idle_seconds
        now = time.monotonic()
        stopped = []
        for key, executor in list(self._executors.items()):
            if not executor.placed:
                continue  # see stop_all: a kill while its process starts is lost, and its slots with it
            if executor.idle_since is not None and now - executor.idle_since >= idle_seconds:
                # Nothing of it is pending: its watch sees the death and finds no task to end.
                del self._executors[key]
                with contextlib.suppress(RayError):
                    ray.kill(executor.handle, no_restart=True)
                stopped.append(key)
        return stopped

    async def stop_all(self, wait_seconds: float = STOP_WAIT_SECONDS) -> None:
        """Stops every executor, each once it has started (for at most `wait_seconds` in all). Ray (2.60) ignores
        a kill that reaches an actor's process while that process is still starting ("Mismatched ActorID:
        ignoring KillActor"), and the process then holds the queue's slots on its node for good: seen in a full
        test run, where an engine stopped just as it made an executor, and the next engine's tasks on that
        queue never ran. A coordinator killed outright (SIGKILL, a crash) cannot wait so: that window remains."""
        # The tasks they still run are left as the store has them (RUNNING): the next start redelivers them, as
        # after a crash. Failed as lost here, their retry rules would decide at a mere stop of the engine.
        self._stopping = True
        executors, self._executors = list(self._executors.values()), {}
        starting = [executor.ready for executor in executors if not executor.placed and not executor.dead]
        if starting:
            with contextlib.suppress(Exception):  # not started in time, or never: killed all the same
                await asyncio.wait_for(asyncio.gather(*starting, return_exceptions=True), wait_seconds)
        for executor in executors:
            executor.dead = True
            with contextlib.suppress(RayError):
                ray.kill(executor.handle, no_restart=True)
        if self._channels is not None and self._channels.done() and self._channels.result() is not None:
            self._channels.result().close()  # type: ignore[union-attr]

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
            if key not in live:  # its node left: the actor is gone with it, and its watch ends its tasks
                del self._executors[key]
        for key, slots in live.items():
            if key not in self._executors:
                self._executors[key] = self._create(key[0], key[1], slots)

    def _create(self, node_id: str, resource: str, slots: int) -> _Executor:
        handle: Any = QueueExecutorActor.options(
            resources={resource: float(slots)},
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            num_cpus=0,
            max_restarts=0,  # replaced instead (see _died())
            max_task_retries=0,
            max_concurrency=MAX_CALLS,
        ).remote(self._coordinator_name, self._namespace, self._runtime, slots, token := uuid.uuid4().hex)
        made_at = time.monotonic()
        executor = _Executor(handle, slots, handle.__ray_ready__.remote(), made_at, idle_since=made_at, token=token)
        watcher = asyncio.get_running_loop().create_task(self._watch((node_id, resource), executor))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return executor


def _node_alive(node_id: str) -> bool:
    """Whether the GCS still lists the node alive (it marks an actor dead for its node's death after the node)."""
    try:
        return any(node.get("NodeID") == node_id and node.get("Alive") for node in ray.nodes())
    except Exception:  # the GCS did not answer: the executor's own death is the safer reading
        return True
