"""The coordinator: one named, detached Ray actor — the only writer of job and task state."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import ray
from ray.actor import ActorHandle

from tork_ray.coordinator import auth_writes
from tork_ray.coordinator.discovery import api_address
from tork_ray.coordinator.dispatch import QueueInfo
from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.executors import ExecutorPool
from tork_ray.coordinator.leftovers import NodeSweeper, finished_task_ids, remove_lost_task_leftovers
from tork_ray.coordinator.nodes import MetricsSnapshot, NodeInfo, NodeMonitor
from tork_ray.coordinator.outage_exit import give_up_handler, open_coordinator_store
from tork_ray.coordinator.own_node import exit_with_node, own_node_probe
from tork_ray.coordinator.readiness import Readiness
from tork_ray.coordinator.recovery import UNFINISHED, clean_nodes, resume_jobs
from tork_ray.coordinator.requests import REQUEST_TTL, KeyReused, applied_job, request_row
from tork_ray.coordinator.requests import TABLE as REQUESTS
from tork_ray.coordinator.scheduler import Scheduler
from tork_ray.coordinator.schedules import ScheduledJobs
from tork_ray.coordinator.webhooks import creation_calls, install_webhooks
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, User, new_id, utcnow
from tork_ray.domain.states import JOB_TERMINAL
from tork_ray.errors import BadRequest, Conflict, NotFound, Unavailable
from tork_ray.placement import check_head, on_head
from tork_ray.runtime.base import RunRequest
from tork_ray.settings import Settings
from tork_ray.spec.models import JobInput, ScheduledJobInput
from tork_ray.spec.units import parse_duration
from tork_ray.spec.validate import COORDINATOR_QUEUES
from tork_ray.store.crypto import warn_if_unencrypted
from tork_ray.store.login_failures import Policy, record_failure
from tork_ray.store.outage import StoreRetry
from tork_ray.store.retention import delete_log_parts_before, expired_job_ids
from tork_ray.store.webhook_outbox import delete_done_before
from tork_ray.worker.executor import Outcome
from tork_ray.worker.task import run_task

log = logging.getLogger(__name__)

PUMP_SECONDS = 1.0
NODE_SWEEP_SECONDS = 2.0  # how often the coordinator looks for queue nodes that joined
MAX_CONCURRENCY = 1000  # the actor's concurrent calls
MAX_WAITING_SUBMITS = 500  # of which submits with `wait` may hold at most this many
T = TypeVar("T")
ACCEPTED_START_DELAY = 0.005  # s between POST /jobs's answer and its job's first scheduling writes


class Coordinator:
    """Async actor: every method runs on one event loop, so handlers never race each other."""

    def __init__(self, settings: Settings, max_waiting: int = MAX_WAITING_SUBMITS) -> None:
        self.settings = settings
        self.store = open_coordinator_store(settings)
        # Writes wait out a store outage (datastore.retry.*): the event loop's, and the log parts' on the I/O thread.
        # Past datastore.retry.timeout the process exits, and Ray restarts it: see coordinator/outage_exit.py.
        self.store.retry_writes = retry = StoreRetry(settings.store_retry, on_give_up=give_up_handler())
        self.writer = StateWriter(self.store, retry)
        self.webhooks = install_webhooks(self.writer, self.store, settings)
        self.engine = Engine(
            self.writer,
            self._launch,
            scope=settings.ray.namespace,
            redeliveries=settings.coordinator.redeliveries,
            limits=settings.limits,
            start_report_delay=settings.worker.start_report_seconds(),
            each_window=settings.coordinator.each_window,
        )
        # worker.executor = "node": tasks go to an executor actor per node and queue (coordinator/executors.py).
        self._executors = (
            ExecutorPool(
                settings.ray.coordinator_name,
                settings.ray.namespace,
                settings.runtime,
                settings.worker.linger_seconds(),
                own_node=ray.get_runtime_context().get_node_id(),
            )
            if settings.worker.executor == "node"
            else None
        )
        if self._executors is not None:
            self.engine.dispatcher.on_finished = self._executors.done
            self.engine.dispatcher.cancel_run = self._executors.cancel
            self.engine.dispatcher.in_flight_per_slot = self._executors.in_flight_per_slot
        self.engine.dispatcher.on_lost = partial(remove_lost_task_leftovers, settings.ray.namespace, settings.runtime)
        self.engine.dispatcher.own_node_alive = own_node_probe()
        self.engine.dispatcher.on_own_node_gone = exit_with_node
        # Cron: fires scheduled jobs' ticks once recovery is done (its store work on the I/O thread below).
        self.scheduler = Scheduler(
            self.store, self.engine.start, off_loop=self._off_loop, along=creation_calls(settings)
        )
        self.schedules = ScheduledJobs(self.store, self.engine, self.scheduler, self._off_loop)
        self._scheduling: asyncio.Task[None] | None = None
        self._readiness = Readiness(self._recover)
        self._cleaned = False
        # Recover at once, not at the first call: after a crash the restarted actor must pick its jobs up
        # even if nobody calls it (Ray runs an async actor's __init__ with its event loop set).
        with contextlib.suppress(RuntimeError):
            self._readiness.start(asyncio.get_event_loop())
        self._loops: list[asyncio.Task[None]] = []
        self._accepted: list[Job] = []
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coordinator-io")
        # Waiting submits hold an actor slot each: at most this many, so other calls always find a slot.
        self._max_waiting = max_waiting
        self._waiters = asyncio.Semaphore(max_waiting)

    def _launch(self, request: RunRequest, resource: str) -> Any:
        if self._executors is not None:
            return self._executors.launch(request, resource)
        return launcher(resource).remote(
            request,
            self.settings.ray.coordinator_name,
            self.settings.ray.namespace,
            self.settings.runtime,
        )

    async def ready(self) -> bool:
        """Recovers from the store once (first call after any start or restart of the actor), then starts the
        accepted jobs still waiting: whatever comes after accept() sees its job started, as if at once."""
        await self._recovered()
        self._start_accepted()
        return True

    async def _recovered(self) -> None:
        await self._readiness.wait()

    async def readiness(self) -> dict[str, Any]:
        """{"ready": bool, "reason": why not (None when ready), "failures": failed recovery attempts}; never
        waits and never touches the store: what /health asks."""
        return self._readiness.report()

    async def _recover(self) -> None:
        removed = 0
        if not self._cleaned:  # once: a retry must not remove containers of tasks an earlier attempt started
            removed = await clean_nodes(self.settings.ray.namespace, self.settings.runtime)
            self._cleaned = True
        # The list of unfinished jobs is read off the loop; each job is then loaded as it is resumed.
        resumed = resume_jobs(self.engine, await asyncio.to_thread(self.store.job_ids_in_states, UNFINISHED))
        log.info("coordinator ready: %d unfinished jobs resumed, %d orphan containers removed", resumed, removed)
        self.webhooks.start()  # on its own thread: picks up the calls a previous process left pending
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._pump_loop()), loop.create_task(self._sweep_loop())]
        self._loops.append(loop.create_task(self._node_sweep_loop()))
        # After the resume: an instance stored PENDING just before a crash was started by it, never twice.
        if self._scheduling is None or self._scheduling.done():
            self._scheduling = loop.create_task(self.scheduler.run())

    async def _pump_loop(self) -> None:
        # Capacity appears when a node joins: a backlog must not wait for the next task event to move.
        while True:
            await asyncio.sleep(PUMP_SECONDS)
            try:
                self.engine.dispatcher.pump_all()
                if self._executors is not None:
                    self._executors.check_placement()
                    self._executors.stop_idle()
            except Exception:
                log.exception("dispatch pump failed")

    async def _node_sweep_loop(self) -> None:
        # A node that joins may be a host whose Ray died with tasks running: their containers are removed there.
        finished = partial(self._off_loop, finished_task_ids, self.store)
        sweeper = NodeSweeper(self.settings.ray.namespace, self.settings.runtime, finished)
        while True:
            await asyncio.sleep(NODE_SWEEP_SECONDS)
            try:
                await sweeper.check()
            except Exception:
                log.exception("sweeping joined nodes failed")

    async def _sweep_loop(self) -> None:
        interval = parse_duration(self.settings.datastore.cleanup_interval)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("clean-up of expired jobs failed")

    async def sweep(self) -> dict[str, int]:
        """Deletes jobs past deleteAt or retention (with their tasks and logs) and log parts past retention."""
        datastore = self.settings.datastore
        now = utcnow()
        jobs_before = now - timedelta(seconds=parse_duration(datastore.retention_jobs))
        deleted = 0
        # The SQL runs on the coordinator's I/O thread, a batch at a time: a sweep of a million rows must not
        # hold the event loop (every other call) while it works.
        while ids := await self._off_loop(expired_job_ids, self.store, now, jobs_before):
            await self._off_loop(self.store.delete_jobs, ids)
            for job_id in ids:
                self.engine.writer.forget_job(job_id)
            deleted += len(ids)
        logs_before = now - timedelta(seconds=parse_duration(datastore.retention_logs))
        parts = 0
        while removed := await self._off_loop(delete_log_parts_before, self.store, logs_before):
            parts += removed
        requests = 0
        while removed := await self._off_loop(self.store.delete_requests_before, now - REQUEST_TTL):
            requests += removed
        calls = 0
        while removed := await self._off_loop(delete_done_before, self.store, now):
            calls += removed
        return {"jobs": deleted, "logParts": parts, "requests": requests, "webhookCalls": calls}

    async def _off_loop(self, function: Callable[..., T], *args: Any) -> T:
        """Runs slow store work on the coordinator's one I/O thread (one, so its writes keep their order)."""
        return await asyncio.get_running_loop().run_in_executor(self._io, partial(function, *args))

    # --- API-facing -----------------------------------------------------------------------------------

    async def accept(
        self, spec: JobInput, created_by: User | None = None, request_id: str | None = None, fingerprint: str = ""
    ) -> dict[str, Any]:
        """POST /jobs without `wait`: stores the job PENDING and answers with its summary at once (as Tork
        answers before its coordinator picks the job up). The job starts a moment later, see _start_accepted.
        Idempotent by `request_id`: a call already applied (a retry by Ray, or a client's repeated
        Idempotency-Key with the same body, `fingerprint`) answers with the job it made; another body → 409."""
        await self._recovered()
        known = applied_job(self.store, request_id, "submit", fingerprint)
        if known is not None:
            return self._known_job(known).summary()
        with self.writer.batch():  # the job and its request id: stored together or not at all
            job = self.engine.create_job(spec, created_by)
            if request_id:
                self.writer.save_with(REQUESTS, [request_row(request_id, "submit", job.id, fingerprint)])
        if not self._accepted:
            asyncio.get_running_loop().call_later(ACCEPTED_START_DELAY, self._start_accepted)
        self._accepted.append(job)
        return job.summary()

    def _start_accepted(self) -> None:
        # Ray sends a method's answer from another thread, which needs the GIL: scheduling the first task at
        # once (evaluation, two writes, the Ray submit: ~0.5 ms) held the answer back by as much. Started a few
        # ms later, in one go for every job accepted meanwhile, the writes are off the submitter's clock.
        jobs, self._accepted = self._accepted, []
        for job in jobs:
            # A failure is rolled back, logged and fails the job (Engine.run): it must not stop the others.
            with contextlib.suppress(Exception):
                self.engine.start(job)

    async def submit_and_wait(
        self,
        spec: JobInput,
        timeout: float,
        created_by: User | None = None,
        request_id: str | None = None,
        fingerprint: str = "",
    ) -> dict[str, Any]:
        """Submits, then waits up to `timeout` s; {"job": full job} at a terminal state, {"id": ...} otherwise.
        Idempotent by `request_id` as accept(): a repeat waits for the job the first call made."""
        await self.ready()
        if self._waiters.locked():
            raise Unavailable(f"too many submits wait (at most {self._max_waiting}): submit without `wait`")
        async with self._waiters:
            return await self._submit_and_wait(spec, timeout, created_by, request_id, fingerprint)

    async def _submit_and_wait(
        self, spec: JobInput, timeout: float, created_by: User | None, request_id: str | None, fingerprint: str
    ) -> dict[str, Any]:
        job_id = applied_job(self.store, request_id, "submit", fingerprint)
        if job_id is None:

            def remember(job: Job) -> None:
                if request_id:
                    self.writer.save_with(REQUESTS, [request_row(request_id, "submit", job.id, fingerprint)])

            job_id = self.engine.submit(spec, created_by, also=remember).id
        job = self._known_job(job_id)
        done = await self.engine.wait_job(job.id, timeout)
        if done is None or done.state not in JOB_TERMINAL:
            return {"id": job.id}
        execution = await asyncio.to_thread(self.store.job_tasks, job.id)  # a read: any thread will do
        return {"job": done.public(execution)}

    async def cancel_job(self, job_id: str, request_id: str | None = None) -> None:
        """Cancels the job. Idempotent by `request_id`: a retry of a cancel that was applied answers OK."""
        await self.ready()
        if not self._seen(request_id, "cancel", job_id):
            self.engine.cancel_job(job_id, also=self._remember(request_id, "cancel", job_id))

    async def restart_job(self, job_id: str, request_id: str | None = None) -> None:
        """Restarts the job. Idempotent by `request_id`: a retry of a restart that was applied answers OK."""
        await self.ready()
        if not self._seen(request_id, "restart", job_id):
            self.engine.restart_job(job_id, also=self._remember(request_id, "restart", job_id))

    def _seen(self, request_id: str | None, kind: str, job_id: str) -> bool:
        known = applied_job(self.store, request_id, kind)
        if known is not None and known != job_id:
            raise KeyReused("request id was already used for another job")
        return known is not None

    def _remember(self, request_id: str | None, kind: str, job_id: str) -> Callable[[], None] | None:
        if not request_id:
            return None
        return lambda: self.writer.save_with(REQUESTS, [request_row(request_id, kind, job_id)])

    def _known_job(self, job_id: str) -> Job:
        job = self.writer.job(job_id)
        if job is None:  # deleted since (autoDelete, retention): the request is answered as for a gone job
            raise NotFound("job not found")
        return job

    # --- scheduled jobs (SPEC §6.1; coordinator/schedules.py) ----------------------------------------

    async def create_scheduled_job(
        self,
        spec: ScheduledJobInput,
        created_by: User | None = None,
        request_id: str | None = None,
        fingerprint: str = "",
    ) -> dict[str, Any]:
        await self.ready()
        return await self.schedules.create(spec, created_by, request_id, fingerprint)

    async def pause_scheduled_job(self, scheduled_id: str, request_id: str | None = None) -> None:
        await self.ready()
        await self.schedules.pause(scheduled_id, request_id)

    async def resume_scheduled_job(self, scheduled_id: str, request_id: str | None = None) -> None:
        await self.ready()
        await self.schedules.resume(scheduled_id, request_id)

    async def delete_scheduled_job(self, scheduled_id: str, request_id: str | None = None) -> None:
        await self.ready()
        await self.schedules.delete(scheduled_id, request_id)

    async def queues(self) -> list[QueueInfo]:
        await self.ready()
        return self.engine.dispatcher.queues()

    async def queue(self, name: str) -> QueueInfo:
        await self.ready()
        info = self.engine.dispatcher.find_queue(name)
        if info is None:
            raise NotFound(f"queue {name} not found")
        return info

    async def purge_queue(self, name: str) -> int:
        """Empties a task queue's backlog. Each removed task FAILS; its job's retry rules then decide, as for
        any failure (a retry goes back to the queue), so no job is left waiting for a task that is gone."""
        await self.ready()
        if name.startswith("x-") or name in COORDINATOR_QUEUES:
            raise BadRequest(f"queue {name} is not a task queue")
        if self.engine.dispatcher.find_queue(name) is None:
            raise NotFound(f"queue {name} not found")
        removed = self.engine.dispatcher.purge(name)
        self.engine.fail_tasks(removed, f"queue {name} was purged")
        return len(removed)

    async def api_address(self) -> str:
        """The API's http://host:port, for Ray programs that submit without a URL (tork_ray.submit())."""
        return api_address(self.settings)

    async def nodes(self) -> list[NodeInfo]:
        await self.ready()
        return await self._node_monitor().nodes(await asyncio.to_thread(self.store.running_tasks_by_node))

    async def metrics(self) -> MetricsSnapshot:
        await self.ready()
        jobs, tasks = await asyncio.to_thread(self.store.running_counts)
        queues = self.engine.dispatcher.queues()
        reports = dict(self._executors.reports) if self._executors is not None else {}
        return MetricsSnapshot(jobs, tasks, await self.nodes(), queues, self.store.counters.snapshot(), reports)

    async def create_user(self, username: str, name: str, password_hash: str) -> User:
        """Stores a user whose password was hashed by the API (slow on purpose: not on this event loop)."""
        await self.ready()
        user = User(id=new_id(), name=name, username=username, created_at=utcnow())
        if not await self._off_loop(self.store.create_user, user, password_hash):
            raise Conflict("user already exists")
        return user

    async def create_role(self, slug: str, name: str) -> dict[str, Any]:
        """POST /roles: a new role; AlreadyExists names a taken slug."""
        await self.ready()
        return await self._off_loop(auth_writes.create_role, self.store, slug, name)

    async def set_role_member(self, username: str, slug: str, member: bool) -> None:
        """PUT/DELETE /users/{username}/roles/{slug}: idempotent; NotFound names an unknown user or role."""
        await self.ready()
        await self._off_loop(auth_writes.set_role_member, self.store, username, slug, member)

    async def ensure_admin(self, username: str, password_hash: str) -> bool:
        """The configured first admin, created or reset (the API hashed the password); True when created."""
        await self.ready()
        return await self._off_loop(self.store.auth.set_admin, username, password_hash)

    async def login_failed(self, digests: list[str], limit: int, window: float, call_id: str) -> None:
        """Spends a failed login from each bucket the API names (store/login_failures.py), for every replica.
        Needs no recovery: it touches no job. Idempotent by `call_id` (Ray may run it again after a restart)."""
        await self._off_loop(record_failure, self.store.engine, digests, Policy(limit, window), call_id)

    def _node_monitor(self) -> NodeMonitor:
        # Made on first use: nodes are probed only once someone asks about them.
        monitor: NodeMonitor | None = getattr(self, "_nodes", None)
        if monitor is None:
            monitor = self._nodes = NodeMonitor()
        return monitor

    async def ping(self) -> bool:
        self.store.ping()
        return True

    # --- worker-facing --------------------------------------------------------------------------------

    async def task_started(self, task_id: str, node_id: str, started_at: str | None = None) -> None:
        """A task still running start_report_delay after its start (which `started_at`, ISO 8601, dates on the
        worker's clock); a shorter task's start comes with its result instead (Engine._result)."""
        await self.ready()
        if self._executors is not None:
            self._executors.started([task_id])
        await self.engine.report_started(task_id, node_id, started_at)

    async def report(
        self, started: list[str], outcomes: list[Outcome], run_seconds: float | None = None, executor: str = ""
    ) -> None:
        """An executor's report (worker.executor = node): the tasks it started and the outcomes of those that
        ended since its last report, and their mean run time. Each outcome is then handled as a Ray task's
        result is (Dispatcher)."""
        if self._executors is not None:
            self._executors.report(started, outcomes, run_seconds, executor)

    async def task_progress(self, task_id: str, value: float) -> None:
        await self.ready()
        self.engine.task_progress(task_id, value)

    async def append_log(self, task_id: str, contents: str) -> None:
        # On the I/O thread: in the order they come, and off the loop that handles every event.
        await self._off_loop(self.store.append_log, task_id, contents)

    async def shutdown(self, grace_seconds: float = 10.0) -> int:
        """Interrupts every running task (their runtimes remove their containers) and waits for them."""
        if self._scheduling is not None:
            self._scheduling.cancel()
        dispatcher = self.engine.dispatcher
        running = list(dispatcher.running_ids())
        for task_id in running:
            dispatcher.cancel(task_id)
        deadline = asyncio.get_running_loop().time() + grace_seconds
        while dispatcher.running_ids() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        if self._executors is not None:
            await self._executors.stop_all()  # their queues' slots given back to the node, none lost
        self.webhooks.stop()
        self._io.shutdown(wait=True)  # log parts already sent are stored before the store closes
        self.store.close()
        return len(running)


CoordinatorActor = ray.remote(Coordinator)


@functools.cache
def launcher(resource: str) -> Any:
    """run_task with its queue's options, built once per queue (`.options` made a new wrapper per task)."""
    return run_task.options(resources={resource: 1})


def start_coordinator(settings: Settings) -> ActorHandle:
    """Gets or creates the named, detached coordinator actor and waits until it has recovered."""
    # Here, not in the actor: this is the process whose log the person starting the engine reads.
    warn_if_unencrypted(settings.datastore.encryption_key, settings.store_url)
    check_head()
    handle: Any = CoordinatorActor.options(
        name=settings.ray.coordinator_name,
        namespace=settings.ray.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=-1,
        num_cpus=0,
        resources=on_head(),  # on the head, also when Ray restarts it (tork_ray/placement.py)
        max_concurrency=MAX_CONCURRENCY,
    ).remote(settings)
    try:
        ray.get(handle.ready.remote())
    except ray.exceptions.RayTaskError as exc:  # recovery failed: it is tried again; /health tells why
        log.warning("the coordinator is not ready yet: %s", str(exc.cause or exc).splitlines()[0])
    return handle


def get_coordinator(settings: Settings) -> ActorHandle:
    try:
        return ray.get_actor(settings.ray.coordinator_name, namespace=settings.ray.namespace)
    except ValueError:
        raise NotFound("coordinator is not running") from None
