"""A long-lived executor per node and queue (`worker.executor = "node"`): one actor process that holds all of a
queue's slots on its node (its `queue:<name>` resources) and runs the queue's tasks there on threads, instead
of one Ray task per Tork task (`"task"`).

What it saves is Ray's per-task work: no worker lease, no task placement, no function and arguments resolved
in a fresh task context. And the messages are per batch, not per task: the coordinator sends the tasks it
releases in one loop turn in one `submit` call, and the executor sends the outcomes that end while its last
report is on its way in one `report` call (coordinator/executors.py). A busy engine's messages thus carry
several tasks each, and an idle one's a single task, at once. An executor on the coordinator's own node sends
and receives those messages on a direct channel (worker/channel.py) once it is open, instead of Ray's calls.

An executor accepts up to `prefetch` tasks beyond its slots, queued here in the order they came, so a slot that
frees starts the next task without waiting for the coordinator. The start of each task rides along with the
next report, so that when the executor dies the coordinator knows which of its tasks had not started (see
ExecutorPool): those run again; the others are lost, as a killed worker's are.

What stays the same: the queue's slots are Ray resources (the executor holds them, and runs no more than
`slots` tasks at once: one thread per slot), a task is run by `execute` as in a Ray task (start report, log
shipping, node defaults, the reaper beside the process), a cancel stops the task at the runtime's next wait
and its outcome is then None, and a dead executor loses the tasks it ran (`RayActorError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayError

from tork_ray.errors import TorkError
from tork_ray.runtime.base import RunRequest
from tork_ray.settings import RuntimeSettings
from tork_ray.worker.channel import ChannelClosed, frame, hello, read_message
from tork_ray.worker.start_report import started_now, with_start
from tork_ray.worker.task import execute, node_identity, node_settings

log = logging.getLogger(__name__)

# What a report carries: (task id, its outcome as run_task's, or None when it was cancelled).
Outcome = tuple[str, dict[str, str] | None]

# An executor with tasks waiting for a slot holds its outcomes back, so that a report (and the coordinator's
# transaction, and its next submit) carries several: until no more tasks wait than it has slots (their next
# tasks must be sent before those run out), REPORT_BATCH outcomes, or REPORT_HOLD_SECONDS. One with no task
# waiting reports each outcome at once: a sequential job's next task waits for it.
REPORT_HOLD_SECONDS = 0.01
REPORT_BATCH = 32


@dataclass
class _Run:
    cancelled: threading.Event = field(default_factory=threading.Event)
    future: Future[dict[str, str]] | None = None
    ran: float | None = None  # how long it ran (s), set by its thread as it ends


class Reports:
    """An executor's reports to the coordinator: the outcomes of its tasks, and the starts heard of since the
    last report, one report on its way at a time (while one is, the outcomes that end meanwhile wait for the
    next). Runs on the executor's event loop, but for `starting`, which the task threads call."""

    def __init__(self, send: Callable[[list[str], list[Outcome], float | None], Awaitable[object]], slots: int) -> None:
        self._send = send
        self._slots = slots
        self._unstarted: set[str] = set()  # the tasks waiting for a slot, as the event loop knows
        self._starting: deque[str] = deque()  # appended by the task threads as they start, drained on the loop
        self._started: list[str] = []  # for the next report
        self._outcomes: list[Outcome] = []
        self._ran: list[float] = []  # the run times of the tasks that ran, for the next report
        self._reporting = False
        self._hold: asyncio.TimerHandle | None = None

    def submitted(self, task_id: str) -> None:
        self._unstarted.add(task_id)

    def starting(self, task_id: str) -> None:
        """On the task's thread, as it starts."""
        self._starting.append(task_id)

    def ended(self, task_id: str, outcome: dict[str, str] | None, seconds: float | None = None) -> None:
        """`seconds`: how long it ran (None if it never started)."""
        self._unstarted.discard(task_id)  # cancelled before it started
        self._outcomes.append((task_id, outcome))
        if seconds is not None:
            self._ran.append(seconds)
        self._consider()

    def _consider(self) -> None:
        if self._reporting or not self._outcomes:
            return  # a report on its way considers the next once it is answered
        while self._starting:
            task_id = self._starting.popleft()
            self._unstarted.discard(task_id)
            self._started.append(task_id)
        if len(self._unstarted) <= self._slots or len(self._outcomes) >= REPORT_BATCH:
            self._report_now()
        elif self._hold is None:
            self._hold = asyncio.get_running_loop().call_later(REPORT_HOLD_SECONDS, self._report_now)

    def _report_now(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        if not self._reporting and self._outcomes:
            self._reporting = True
            asyncio.get_running_loop().create_task(self._report())

    async def _report(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        started, self._started = self._started, []
        ran, self._ran = self._ran, []
        try:
            # The tasks' mean run time: how deep the coordinator lets this queue's executors queue (executors.py).
            await self._send(started, outcomes, sum(ran) / len(ran) if ran else None)
        except (RayError, ChannelClosed) as exc:  # the coordinator is gone: its next process runs these tasks again
            log.warning("could not report %d outcome(s) to the coordinator: %s", len(outcomes), exc)
        finally:
            self._reporting = False
        self._consider()


class QueueExecutor:
    """Runs up to `slots` tasks at once, each on a thread of its own; the rest wait in the threads' queue."""

    def __init__(
        self, coordinator_name: str, namespace: str, runtime: RuntimeSettings, slots: int, token: str = ""
    ) -> None:
        self._coordinator = ray.get_actor(coordinator_name, namespace=namespace)
        self._runtime = runtime
        self._settings: RuntimeSettings | TorkError | None = None  # _node_settings()
        self._node_id = node_identity()["nodeId"]
        self._threads = ThreadPoolExecutor(max_workers=max(1, slots), thread_name_prefix="tork-task")
        self._runs: dict[str, _Run] = {}
        self._token = token
        self._reports = Reports(self._report, max(1, slots))
        self._stopped: asyncio.Event | None = None
        self._channel: asyncio.StreamWriter | None = None  # open_channel()
        self._acks: deque[asyncio.Future[None]] = deque()  # the reports sent on the channel, not yet answered
        self._channel_reader: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    async def open_channel(self, path: str) -> bool:
        """Connects to the coordinator's channel at `path` (worker/channel.py; on its node) and proves who it is;
        from then on the coordinator sends the tasks and this executor its reports there. False if it cannot."""
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as exc:
            log.warning("the coordinator's channel at %s could not be opened, Ray's calls carry on: %s", path, exc)
            return False
        writer.write(hello(self._token))
        self._channel = writer
        self._channel_reader = asyncio.get_running_loop().create_task(self._read_channel(reader, writer))
        return True

    async def _read_channel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                message = await read_message(reader)
                if message[0] == "submit":
                    self._accept(message[1])
                elif message[0] == "cancel":
                    self._cancel(message[1])
                elif message[0] == "ack" and self._acks:
                    self._acks.popleft().set_result(None)
        except ChannelClosed:
            pass  # the coordinator closed it: it is stopping, or stops this executor
        finally:
            self._channel = None
            writer.close()
            while self._acks:
                self._acks.popleft().set_exception(ChannelClosed("the coordinator closed the channel"))

    async def _report(self, started: list[str], outcomes: list[Outcome], mean: float | None) -> None:
        """One report: on the channel when it is open (answered by an "ack"), else by a Ray call; each carries the
        token its coordinator gave this executor (coordinator/executors.py ExecutorPool.report)."""
        if self._channel is None:
            await self._coordinator.report.remote(started, outcomes, mean, self._token)
            return
        answered = asyncio.get_running_loop().create_future()
        self._acks.append(answered)
        self._channel.write(frame(("report", started, outcomes, mean)))
        await answered

    async def submit(self, requests: list[RunRequest]) -> None:
        """Queues `requests`, in order; each one's outcome comes back in a report to the coordinator."""
        self._accept(requests)

    def _accept(self, requests: list[RunRequest]) -> None:
        loop = asyncio.get_running_loop()
        for request in requests:
            if request.task_id in self._runs:
                continue  # sent again (never twice by one coordinator, but a repeat must not run twice)
            run = self._runs[request.task_id] = _Run()
            run.future = future = self._threads.submit(self._execute, request, run)
            self._reports.submitted(request.task_id)
            future.add_done_callback(partial_threadsafe(loop, self._ended, request.task_id))

    async def cancel(self, task_id: str) -> None:
        """Stops the task: one still queued never starts, a running one stops at the runtime's next wait (the
        runtime removes what it started first). Its outcome is then reported as None."""
        self._cancel(task_id)

    def _cancel(self, task_id: str) -> None:
        run = self._runs.get(task_id)
        if run is not None and run.future is not None and not run.future.cancel():
            run.cancelled.set()

    async def until_stopped(self) -> None:
        """Never answers: the coordinator holds this call to learn of the executor's death (RayActorError)."""
        if self._stopped is None:
            self._stopped = asyncio.Event()
        await self._stopped.wait()

    def _execute(self, request: RunRequest, run: _Run) -> dict[str, str]:
        began = time.monotonic()
        self._reports.starting(request.task_id)
        settings = self._node_settings()
        if isinstance(settings, TorkError):  # this node's own TORK_* variables are wrong: every task fails, saying why
            return with_start({"error": settings.message}, self._node_id, started_now())
        try:
            return execute(request, self._coordinator, settings, self._node_id, run.cancelled.is_set)
        finally:
            run.ran = time.monotonic() - began

    def _node_settings(self) -> RuntimeSettings | TorkError:
        """This node's runtime settings, or why they are wrong: read from its environment once (reading it took
        0.1 ms a task), which does not change under a running process."""
        if self._settings is None:
            try:
                self._settings = node_settings(self._runtime)
            except TorkError as exc:
                self._settings = exc
        return self._settings

    def _ended(self, task_id: str, future: Future[dict[str, str]]) -> None:
        """On the event loop: the task's outcome joins the next report."""
        run = self._runs.pop(task_id, None)
        outcome: dict[str, str] | None
        if future.cancelled():
            outcome = None
        else:
            error = future.exception()
            if error is None:
                outcome = future.result()
            elif run is not None and run.cancelled.is_set():
                outcome = None  # the runtime ended with its own KeyboardInterrupt once it removed what it started
            else:  # a bug below execute, which answers every failure itself: the task fails, saying why
                outcome = with_start({"error": f"{type(error).__name__}: {error}"}, self._node_id, started_now())
        self._reports.ended(task_id, outcome, None if run is None else run.ran)


def partial_threadsafe(
    loop: asyncio.AbstractEventLoop, handler: Callable[[str, Future[dict[str, str]]], None], task_id: str
) -> Callable[[Future[dict[str, str]]], None]:
    """A future's done callback (called on the task's thread) that runs `handler(task_id, future)` on `loop`."""

    def callback(future: Future[dict[str, str]]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending
            loop.call_soon_threadsafe(handler, task_id, future)

    return callback


QueueExecutorActor = ray.remote(QueueExecutor)
