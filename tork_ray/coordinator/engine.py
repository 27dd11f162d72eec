"""The coordinator's handlers: every job and task event, applied through the one StateWriter (see WorkQueue)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from tork_ray.coordinator.composite import Composites
from tork_ray.coordinator.dispatch import Dispatcher
from tork_ray.coordinator.events import (
    CancelJob,
    EachChunk,
    Event,
    JobFinished,
    Pending,
    StartJob,
    TaskCompleted,
    TaskFailed,
)
from tork_ray.coordinator.factory import new_job, new_task, task_context
from tork_ray.coordinator.grouping import EventGroup
from tork_ray.coordinator.request import build_request, retry_delay
from tork_ray.coordinator.starts import StartDelays, worker_time
from tork_ray.coordinator.workqueue import CHUNK_EVENTS, WorkQueue
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, Task, User, utcnow
from tork_ray.domain.states import JOB_ACTIVE, JOB_TERMINAL, TASK_ACTIVE, JobState, TaskState
from tork_ray.errors import Conflict, ExpressionError, NotFound, TorkError
from tork_ray.expr import evaluate_condition, render
from tork_ray.runtime.base import RunRequest
from tork_ray.settings import EACH_WINDOW, LimitsSettings
from tork_ray.spec.models import JobInput
from tork_ray.spec.units import parse_duration

log = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 1000


class Engine(WorkQueue):
    """Runs jobs: start, schedule, complete, fail, retry, cancel, restart. Single-threaded (the actor's loop)."""

    def __init__(
        self,
        writer: StateWriter,
        launch: Callable[[RunRequest, str], Any],
        scope: str,
        redeliveries: int = 1,
        limits: LimitsSettings | None = None,
        start_report_delay: float = 0.0,
        each_window: int = EACH_WINDOW,
    ) -> None:
        self.writer = writer
        self.scope = scope
        self.redeliveries = redeliveries  # the coordinator.redeliveries setting
        self.starts = StartDelays(start_report_delay, self.redeliveries_of)  # when workers report RUNNING
        self.limits = limits or LimitsSettings()  # what one evaluation may cost (limits.*)
        self.dispatcher = Dispatcher(launch, self.on_result)
        self.composites = Composites(writer, self.post, self.limits, each_window)
        self._finished: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[None]] = set()
        WorkQueue.__init__(self, writer)
        self.group = EventGroup(self)  # workers' events of one loop turn, one commit (grouping.py)

    def _handle(self, event: Event) -> None:
        match event:
            case StartJob(job):
                self._start_job(job)
            case Pending(job, task):
                self._pending(job, task)
            case TaskCompleted(task):
                self._completed(task)
            case TaskFailed(task, retryable):
                self._failed(task, retryable)
            case JobFinished(job):
                self.composites.job_finished(job)
            case CancelJob(job):
                if job.state in JOB_ACTIVE:
                    self._cancel(job)
            case EachChunk(job, task, start, phase):
                self.composites.each_chunk(job, task, start, phase)

    def _resumable(self, event: Event) -> bool:
        # A stored PENDING task: recovery posts Pending for every PENDING task of an unfinished job, so a
        # crash before the next chunk loses nothing; and _pending checks the task and job again when it runs.
        # An each's next chunk: recovery carries on from the `each.stored` committed with the last one.
        return isinstance(event, EachChunk) or (isinstance(event, Pending) and event.task.state is TaskState.PENDING)

    def _weight(self, event: Event) -> int:
        # A chunk of an each's start (EACH_CHUNK children) is as much work as a whole transaction of other events.
        return CHUNK_EVENTS if isinstance(event, EachChunk) else 1

    def _rolled_back(self) -> None:
        self.composites.forget_windows()  # rebuilt from the live set on next use

    def _event_failed(self, exc: Exception, job_id: str | None, what: str) -> None:
        log.error("coordinator error while handling %s (rolled back)", what, exc_info=exc)
        self.composites.forget_windows()  # rebuilt from the live set on next use
        if job_id is None:
            return
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        error = f"coordinator error while handling {what}: {reason}"[:ERROR_TEXT_LIMIT]
        try:
            self.run(lambda: self._fail_by_id(job_id, error), None, f"the failure of job {job_id}")
        except Exception:
            log.exception("job %s could not be failed after a coordinator error", job_id)

    def _fail_by_id(self, job_id: str, error: str) -> None:
        job = self.writer.job(job_id)
        if job is not None and job.state not in JOB_TERMINAL:
            self.fail_job(job, error)

    # --- submission and job life cycle ----------------------------------------------------------------

    def create_job(
        self, spec: JobInput, created_by: User | None = None, with_job_namespace: bool = True, job_id: str | None = None
    ) -> Job:
        """Stores a new PENDING job (with id `job_id` if given); `start` sets it going."""
        job = new_job(spec, created_by, None, with_job_namespace, job_id)
        self.writer.create_job(job)
        return job

    def start(self, job: Job) -> None:
        self.run(lambda: self.post(StartJob(job)), job.id, f"the start of job {job.id}")

    def submit(
        self,
        spec: JobInput,
        created_by: User | None = None,
        also: Callable[[Job], None] | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Creates and starts a job in one transaction; `also(job)` adds its own writes to it; `job_id` as in
        create_job."""
        created: list[Job] = []

        def submit() -> None:
            # A try rolled back by an outage made another (with a new id, unless the caller chose it).
            created[:] = [self.create_job(spec, created_by, job_id=job_id)]
            if also is not None:
                also(created[0])
            self.post(StartJob(created[0]))

        self.run(submit, None, "a submit")
        return created[0]

    def _start_job(self, job: Job) -> None:
        if job.state is not JobState.PENDING:
            return
        parent = self.writer.task(job.parent_id) if job.parent_id else None
        if parent is not None and parent.state is not TaskState.RUNNING:  # its parent task ended meanwhile
            self.writer.move_job(job, JobState.CANCELLED)
            return
        task = new_task(job, job.tasks[0], position=1, limits=self.limits)
        self.writer.move_job(job, JobState.SCHEDULED, position=1)
        self.writer.create_tasks([task])
        self.post(Pending(job, task))

    def _pending(self, job: Job, task: Task) -> None:
        """PENDING → SKIPPED, RUNNING (composites) or SCHEDULED (queued on Ray)."""
        if job.state not in JOB_ACTIVE:
            return
        if task.state is TaskState.FAILED:  # its templates failed to evaluate: no attempt would do better
            self.post(TaskFailed(task, retryable=False))
            return
        if task.state is not TaskState.PENDING:  # cancelled since it was posted
            return
        ctx = task_context(job, task)
        condition = task.spec.get("if")
        if condition:
            try:
                run_it = evaluate_condition(str(condition), ctx, limits=self.limits)
            except ExpressionError as exc:
                self._fail_task(task, exc.message, retryable=False)
                return
            if not run_it:
                self.writer.move_task(task, TaskState.SKIPPED)
                self.post(TaskCompleted(task))
                return
        if task.is_composite:
            self.composites.start(job, task, ctx)
            return
        self._schedule(job, task)

    def _schedule(self, job: Job, task: Task, **changes: Any) -> None:
        """Moves a regular task to SCHEDULED (with `changes`) and queues it on Ray."""
        try:
            request = build_request(task.id, job.id, task.spec, self.scope)
        except TorkError as exc:  # a task the runtime cannot be asked to run fails, the coordinator carries on
            self._fail_task(task, exc.message, retryable=False)
            return
        # A task SCHEDULED before a restart is queued again as it is: nothing to record.
        if task.state is TaskState.SCHEDULED or self.writer.move_task(task, TaskState.SCHEDULED, **changes):
            self.queue(task, replace(request, start_report_delay=self.starts.delay_of(task)))

    def requeue(self, job: Job, task: Task) -> None:
        """After a restart: a task stored SCHEDULED waits in its queue again. It may have started, though: a
        task reports its start only after start_report_delay (or with its result), so one the old coordinator
        had launched can be stored SCHEDULED. It runs again, as one not started (no redelivery spent), but now
        reports its start at once: from its next run on, a restart finds it RUNNING and counts a redelivery."""
        self.starts.at_once(task.id)
        self._schedule(job, task)

    def redeliveries_of(self, task: Task) -> int:
        own = task.spec.get("redeliveries")
        return self.redeliveries if own is None else int(own)

    def redeliver(self, job: Job, task: Task, lost_error: str) -> None:
        """After a restart: a task that was RUNNING (its run died with the old coordinator) runs again, at most
        `redeliveries` times (its own, else the setting); past that it FAILS and its retry rules decide."""
        limit = self.redeliveries_of(task)
        if task.redelivered >= limit:
            error = lost_error if limit == 0 else f"{lost_error} (already redelivered {task.redelivered} times)"
            self._fail_task(task, error)
            return
        self._schedule(job, task, redelivered=task.redelivered + 1, node_id=None, started_at=None, progress=0.0)

    def queue(self, task: Task, request: RunRequest) -> None:
        """Hands a SCHEDULED task to the dispatcher once that state is stored (and if it still holds then)."""

        def enqueue() -> None:
            if task.state is TaskState.SCHEDULED:
                self.dispatcher.enqueue(task.id, task.queue, task.priority, request)

        self.writer.after_commit(enqueue)

    def _fail_task(self, task: Task, error: str, retryable: bool = True, at: datetime | None = None) -> None:
        if self.writer.move_task(task, TaskState.FAILED, error=error, failed_at=at or utcnow()):
            self.post(TaskFailed(task, retryable))

    # --- events from workers --------------------------------------------------------------------------

    def _started(self, task: Task, node_id: str, started_at: str | None = None) -> None:
        changes: dict[str, Any] = {"node_id": node_id}
        if started_at is not None:
            changes["started_at"] = worker_time(started_at, task.scheduled_at)
        if self.writer.move_task(task, TaskState.RUNNING, **changes):
            job = self.writer.job(task.job_id)
            if job is not None and job.state is JobState.SCHEDULED:
                self.writer.move_job(job, JobState.RUNNING)

    async def report_started(self, task_id: str, node_id: str, started_at: str | None = None) -> None:
        """task_started, in the loop turn's group commit; returns once the RUNNING state is stored. `started_at`
        is the worker's clock at the start (ISO 8601): the report may come start_report_delay later."""
        task = self.writer.task(task_id)
        if task is not None:
            started = partial(self._started, task, node_id, started_at)
            await self.group.run(started, task.job_id, f"the start of task {task_id}")

    def task_progress(self, task_id: str, value: float) -> None:
        task = self.writer.task(task_id)
        if task is not None and task.state in TASK_ACTIVE:
            self.run(lambda: self._progress(task, value), task.job_id, f"the progress of task {task_id}")

    def _progress(self, task: Task, value: float) -> None:
        progress = round(min(100.0, max(0.0, float(value))), 2)
        self.writer.update_task(task, progress=progress)
        job = self.writer.job(task.job_id)
        if job is not None and job.state in JOB_ACTIVE and job.task_count:
            self.writer.update_job(job, progress=round(((job.position - 1) + progress / 100) / job.task_count * 100, 2))

    async def on_result(self, task_id: str, outcome: dict[str, str] | None) -> None:
        self.starts.ended(task_id)
        task = self.writer.task(task_id)
        if task is None or outcome is None:  # unknown, or interrupted by a cancel we asked for
            return
        await self.group.run(partial(self._result, task, outcome), task.job_id, f"the result of task {task_id}")

    def _result(self, task: Task, outcome: dict[str, str]) -> None:
        if "nodeId" in outcome:
            # The start came with the result (a task shorter than start_report_delay, or one whose report is
            # still on its way): RUNNING first, in this same transaction, so every watcher sees the task start
            # then end; a start already stored is a repeat, ignored by the transition table.
            self._started(task, outcome["nodeId"], outcome.get("startedAt"))
        # The end on the worker's clock, kept between the task's start and now (as its start is).
        ended = worker_time(outcome["endedAt"], task.started_at or task.scheduled_at) if "endedAt" in outcome else None
        if "error" in outcome:
            self._fail_task(task, outcome["error"], at=ended)
        elif self.writer.move_task(
            task, TaskState.COMPLETED, result=outcome.get("result", ""), progress=0.0, completed_at=ended or utcnow()
        ):
            self.post(TaskCompleted(task))

    def fail_tasks(self, task_ids: list[str], error: str) -> None:
        """FAILS each task that is still active (one event per task); its job's retry rules then decide."""
        for task_id in task_ids:
            task = self.writer.task(task_id)
            if task is not None:
                self.run(partial(self._fail_task, task, error), task.job_id, f"the failure of task {task_id}")

    # --- completion -----------------------------------------------------------------------------------

    def _completed(self, task: Task) -> None:
        """Bookkeeping after a task COMPLETED or SKIPPED: the parent composite, or the next top-level task."""
        job = self.writer.job(task.job_id)
        if job is None or job.state not in JOB_ACTIVE:
            return
        self._record_var(job, task)
        if task.parent_id:
            self.composites.child_completed(job, task)
            return
        self._advance(job)

    def _record_var(self, job: Job, task: Task) -> None:
        var = task.spec.get("var")
        if var and task.result:
            tasks = {**job.context.get("tasks", {}), str(var): task.result}
            self.writer.update_job(job, context={**job.context, "tasks": tasks})

    def _advance(self, job: Job) -> None:
        position = job.position + 1
        progress = round(job.position / job.task_count * 100, 2) if job.task_count else 100.0
        if position > len(job.tasks):
            self.writer.update_job(job, position=position, progress=progress)
            self._complete_job(job)
            return
        task = new_task(job, job.tasks[position - 1], position, limits=self.limits)
        self.writer.update_job(job, position=position, progress=progress)
        self.writer.create_tasks([task])
        self.post(Pending(job, task))

    def _complete_job(self, job: Job) -> None:
        result = None
        if job.output:
            try:
                result = render(job.output, job.context, limits=self.limits)
            except ExpressionError as exc:
                self.fail_job(job, exc.message)
                return
        delete_at = None
        if job.auto_delete and job.auto_delete.get("after"):
            delete_at = utcnow() + timedelta(seconds=parse_duration(job.auto_delete["after"]))
        if self.writer.move_job(job, JobState.COMPLETED, result=result, progress=100.0, delete_at=delete_at):
            self._finish(job)

    def _finish(self, job: Job) -> None:
        self.post(JobFinished(job))
        self.writer.after_commit(lambda: self._notify(job))

    # --- failure and retry ----------------------------------------------------------------------------

    def _failed(self, task: Task, retryable: bool = True) -> None:
        """After a task FAILED: a new attempt if its retry allows, else its parent or its job fails."""
        job = self.writer.job(task.job_id)
        if job is None or job.state not in JOB_ACTIVE:
            return
        retry = dict(task.spec.get("retry") or {})
        attempts = int(retry.get("attempts") or 0)
        if retryable and attempts < int(retry.get("limit") or 0):
            self._retry(job, task, {**retry, "attempts": attempts + 1})
            return
        if task.parent_id:
            parent = self.writer.task(task.parent_id)
            if parent is not None and self.writer.move_task(parent, TaskState.FAILED, error=task.error):
                self.post(TaskFailed(parent))
                return
        self.fail_job(job, task.error or "task failed")

    def _retry(self, job: Job, failed: Task, retry: dict[str, Any]) -> None:
        spec = {**failed.spec, "retry": retry}
        task = Task(
            job_id=job.id,
            parent_id=failed.parent_id,
            position=failed.position,
            name=failed.name,
            queue=failed.queue,
            priority=failed.priority,
            spec=spec,
        )
        self.writer.create_tasks([task])
        delay = retry_delay(retry, retry["attempts"])
        if delay <= 0:
            self.post(Pending(job, task))
            return
        self.writer.after_commit(lambda: self._spawn(self._delayed_pending(job.id, task.id, delay)))

    async def _delayed_pending(self, job_id: str, task_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        job, task = self.writer.job(job_id), self.writer.task(task_id)
        # The job may have been cancelled during the backoff: the task then is no longer PENDING.
        if job is not None and task is not None and job.state in JOB_ACTIVE and task.state is TaskState.PENDING:
            # A failure is logged, rolled back and fails the job in run(): nothing waits for this task.
            with contextlib.suppress(Exception):
                self.run(lambda: self.post(Pending(job, task)), job_id, f"the retry of task {task_id}")

    def fail_job(self, job: Job, error: str) -> None:
        if not self.writer.move_job(job, JobState.FAILED, error=error):
            return
        self._cancel_active_tasks(job)
        self._finish(job)

    # --- cancel and restart ---------------------------------------------------------------------------

    def cancel_job(self, job_id: str, also: Callable[[], None] | None = None) -> None:
        """Cancels an active job; `also()` adds its own writes to the same transaction."""
        job = self.writer.job(job_id)
        if job is None:
            raise NotFound("job not found")
        if job.state not in JOB_ACTIVE:
            raise Conflict("job is not running")
        self.run(partial(self._along, partial(self._cancel, job), also), job.id, f"the cancel of job {job_id}")

    @staticmethod
    def _along(action: Callable[[], None], also: Callable[[], None] | None) -> None:
        action()
        if also is not None:
            also()

    def _cancel(self, job: Job) -> None:
        if not self.writer.move_job(job, JobState.CANCELLED):
            return
        self._cancel_active_tasks(job)
        self._finish(job)

    def _cancel_active_tasks(self, job: Job) -> None:
        self.writer.cancel_created(job.id)  # each children waiting in the store, in bulk
        for task in self.writer.active_tasks(job.id):
            self.writer.move_task(task, TaskState.CANCELLED)
            self.writer.after_commit(partial(self._cancel_run, task.id))
            sub_id = (task.spec.get("subjob") or {}).get("id")
            sub = self.writer.job(sub_id) if sub_id else None
            if sub is not None and sub.state in JOB_ACTIVE:
                self.post(CancelJob(sub))

    def _cancel_run(self, task_id: str) -> None:
        self.dispatcher.cancel(task_id)

    def restart_job(self, job_id: str, also: Callable[[], None] | None = None) -> None:
        """Restarts a FAILED or CANCELLED job; `also()` adds its own writes to the same transaction."""
        job = self.writer.job(job_id)
        if job is None:
            raise NotFound("job not found")
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise Conflict(f"job is {job.state} and can not be restarted")
        if job.position > len(job.tasks) or job.position < 1:
            raise Conflict("job has no more tasks to run")
        self.run(partial(self._along, partial(self._restart, job), also), job.id, f"the restart of job {job_id}")

    def _restart(self, job: Job) -> None:
        self.writer.move_job(job, JobState.RUNNING, failed_at=None, completed_at=None, error=None)
        self._finished.pop(job.id, None)
        task = new_task(job, job.tasks[job.position - 1], job.position, limits=self.limits)
        self.writer.create_tasks([task])
        self.post(Pending(job, task))

    # --- waiting --------------------------------------------------------------------------------------

    async def wait_job(self, job_id: str, timeout: float) -> Job | None:
        """The job once it is terminal, or None after `timeout` seconds."""
        job = self.writer.job(job_id)
        if job is None:
            raise NotFound("job not found")
        if job.state in JOB_TERMINAL:
            return job
        event = self._finished.setdefault(job_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return None
        return self.writer.job(job_id)

    def _notify(self, job: Job) -> None:
        event = self._finished.pop(job.id, None)
        if event is not None:
            event.set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
