"""The coordinator's handlers: every job and task event, applied through the one StateWriter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tork_ray.coordinator.composite import Composites
from tork_ray.coordinator.dispatch import Dispatcher
from tork_ray.coordinator.request import apply_defaults, build_request, retry_delay
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.evaluate import each_item_context, evaluate_task, job_context
from tork_ray.domain.models import GUEST, ITEM_KEY, Job, Task, User, utcnow
from tork_ray.domain.states import JOB_ACTIVE, JOB_TERMINAL, TASK_ACTIVE, JobState, TaskState
from tork_ray.errors import Conflict, ExpressionError, NotFound, TorkError
from tork_ray.expr import evaluate_condition, render
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.models import JobInput, to_dict
from tork_ray.spec.units import parse_duration

log = logging.getLogger(__name__)


class Engine:
    """Runs jobs: start, schedule, complete, fail, retry, cancel, restart. Single-threaded (the actor's loop)."""

    def __init__(self, writer: StateWriter, launch: Callable[[RunRequest, str], Any], scope: str) -> None:
        self.writer = writer
        self.scope = scope
        self.dispatcher = Dispatcher(launch, self.on_result)
        self.composites = Composites(self)
        self._finished: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[None]] = set()

    # --- submission and job life cycle ----------------------------------------------------------------

    def create_job(self, spec: JobInput, created_by: User | None = None, with_job_namespace: bool = True) -> Job:
        """Stores a new PENDING job; `start_job` sets it going."""
        job = new_job(spec, created_by, None)
        job.context = job_context(job.id, job.name, job.inputs, job.secrets, {}, with_job=with_job_namespace)
        self.writer.create_job(job)
        return job

    def submit(self, spec: JobInput, created_by: User | None = None, with_job_namespace: bool = True) -> Job:
        job = self.create_job(spec, created_by, with_job_namespace)
        self.start_job(job)
        return job

    def prepare_subjob(self, spec: JobInput, parent_job: Job, parent_task: Task) -> Job:
        """An attached sub-job, stored PENDING: context {inputs, secrets} only, owner and permissions inherited."""
        job = new_job(spec, parent_job.created_by, parent_task.id)
        job.permissions = parent_job.permissions
        job.context = job_context(job.id, job.name, job.inputs, job.secrets, {}, with_job=False)
        self.writer.create_job(job)
        return job

    def start_job(self, job: Job) -> None:
        task = self.new_task(job, job.tasks[0], position=1)
        self.writer.move_job(job, JobState.SCHEDULED, position=1)
        self.writer.create_tasks([task])
        self.handle_pending(job, task)

    def new_task(
        self,
        job: Job,
        definition: dict[str, Any],
        position: int,
        parent_id: str | None = None,
        context: dict[str, Any] | None = None,
        state: TaskState = TaskState.PENDING,
    ) -> Task:
        """A task instance of `definition`, evaluated now; FAILED with the error if evaluation fails."""
        try:
            spec = evaluate_task(definition, context if context is not None else job.context)
        except ExpressionError as exc:
            return Task(
                job_id=job.id,
                parent_id=parent_id,
                position=position,
                name=str(definition.get("name", "")),
                state=TaskState.FAILED,
                error=exc.message,
                failed_at=utcnow(),
                spec=dict(definition),
            )
        spec = apply_defaults(spec, job.defaults)
        return Task(
            job_id=job.id,
            parent_id=parent_id,
            position=position,
            name=str(spec.get("name", "")),
            state=state,
            queue=str(spec.get("queue") or "default"),
            priority=int(spec.get("priority") or 0),
            spec=spec,
        )

    @staticmethod
    def task_context(job: Job, task: Task) -> dict[str, Any]:
        """What a task's templates see: the job's context, plus the item for an each child."""
        item = task.spec.get(ITEM_KEY)
        if item is None:
            return job.context
        return each_item_context(job.context, item.get("var"), int(item["index"]), item.get("value"))

    def handle_pending(self, job: Job, task: Task) -> None:
        """PENDING → SKIPPED, RUNNING (composites) or SCHEDULED (queued on Ray)."""
        if task.state is TaskState.FAILED:  # its templates failed to evaluate: no attempt would do better
            self.on_task_failed(task, retryable=False)
            return
        ctx = self.task_context(job, task)
        condition = task.spec.get("if")
        if condition:
            try:
                run_it = evaluate_condition(str(condition), ctx)
            except ExpressionError as exc:
                self.writer.move_task(task, TaskState.FAILED, error=exc.message)
                self.on_task_failed(task, retryable=False)
                return
            if not run_it:
                self.writer.move_task(task, TaskState.SKIPPED)
                self.on_task_completed(task)
                return
        if task.is_composite:
            self.composites.start(job, task, ctx)
            return
        try:
            request = build_request(task.id, job.id, task.spec, self.scope)
        except TorkError as exc:  # a task the runtime cannot be asked to run fails, the coordinator carries on
            self.writer.move_task(task, TaskState.FAILED, error=exc.message)
            self.on_task_failed(task, retryable=False)
            return
        self.writer.move_task(task, TaskState.SCHEDULED)
        self.dispatcher.enqueue(task.id, task.queue, task.priority, request)

    # --- events from workers --------------------------------------------------------------------------

    def task_started(self, task_id: str, node_id: str) -> None:
        task = self.writer.task(task_id)
        if task is None:
            return
        if self.writer.move_task(task, TaskState.RUNNING, node_id=node_id):
            job = self.writer.job(task.job_id)
            if job is not None and job.state is JobState.SCHEDULED:
                self.writer.move_job(job, JobState.RUNNING)

    def task_progress(self, task_id: str, value: float) -> None:
        task = self.writer.task(task_id)
        if task is None or task.state not in TASK_ACTIVE:
            return
        progress = round(min(100.0, max(0.0, float(value))), 2)
        self.writer.update_task(task, progress=progress)
        job = self.writer.job(task.job_id)
        if job is not None and job.state in JOB_ACTIVE and job.task_count:
            self.writer.update_job(job, progress=round(((job.position - 1) + progress / 100) / job.task_count * 100, 2))

    async def on_result(self, task_id: str, outcome: dict[str, str] | None) -> None:
        task = self.writer.task(task_id)
        if task is None or outcome is None:  # unknown, or interrupted by a cancel we asked for
            return
        with self.writer.batch():
            if "error" in outcome:
                if self.writer.move_task(task, TaskState.FAILED, error=outcome["error"]):
                    self.on_task_failed(task)
            elif self.writer.move_task(task, TaskState.COMPLETED, result=outcome.get("result", ""), progress=0.0):
                self.on_task_completed(task)

    # --- completion -----------------------------------------------------------------------------------

    def on_task_completed(self, task: Task) -> None:
        """Bookkeeping after a task COMPLETED or SKIPPED: the parent composite, or the next top-level task."""
        job = self.writer.job(task.job_id)
        if job is None or job.state not in JOB_ACTIVE:
            return
        self._record_var(job, task)
        if task.parent_id:
            self.composites.child_completed(job, task)
            return
        self.advance(job)

    def _record_var(self, job: Job, task: Task) -> None:
        var = task.spec.get("var")
        if var and task.result:
            tasks = {**job.context.get("tasks", {}), str(var): task.result}
            self.writer.update_job(job, context={**job.context, "tasks": tasks})

    def advance(self, job: Job) -> None:
        position = job.position + 1
        progress = round(job.position / job.task_count * 100, 2) if job.task_count else 100.0
        if position > len(job.tasks):
            self.writer.update_job(job, position=position, progress=progress)
            self.complete_job(job)
            return
        task = self.new_task(job, job.tasks[position - 1], position)
        self.writer.update_job(job, position=position, progress=progress)
        self.writer.create_tasks([task])
        self.handle_pending(job, task)

    def complete_job(self, job: Job) -> None:
        result = None
        if job.output:
            try:
                result = render(job.output, job.context)
            except ExpressionError as exc:
                self.fail_job(job, exc.message)
                return
        delete_at = None
        if job.auto_delete and job.auto_delete.get("after"):
            delete_at = utcnow() + timedelta(seconds=parse_duration(job.auto_delete["after"]))
        if self.writer.move_job(job, JobState.COMPLETED, result=result, progress=100.0, delete_at=delete_at):
            self.composites.job_finished(job)
            self._notify(job)

    # --- failure and retry ----------------------------------------------------------------------------

    def on_task_failed(self, task: Task, retryable: bool = True) -> None:
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
                self.on_task_failed(parent)
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
            self.handle_pending(job, task)
            return
        self._spawn(self._delayed_pending(job.id, task.id, delay))

    async def _delayed_pending(self, job_id: str, task_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        job, task = self.writer.job(job_id), self.writer.task(task_id)
        # The job may have been cancelled during the backoff: the task then is no longer PENDING.
        if job is not None and task is not None and job.state in JOB_ACTIVE and task.state is TaskState.PENDING:
            with self.writer.batch():
                self.handle_pending(job, task)

    def fail_job(self, job: Job, error: str) -> None:
        if not self.writer.move_job(job, JobState.FAILED, error=error):
            return
        self._cancel_active_tasks(job)
        self.composites.job_finished(job)
        self._notify(job)

    # --- cancel and restart ---------------------------------------------------------------------------

    def cancel_job(self, job_id: str) -> None:
        job = self.writer.job(job_id)
        if job is None:
            raise NotFound("job not found")
        if job.state not in JOB_ACTIVE:
            raise Conflict("job is not running")
        self._cancel(job)

    def _cancel(self, job: Job) -> None:
        if not self.writer.move_job(job, JobState.CANCELLED):
            return
        self._cancel_active_tasks(job)
        self.composites.job_finished(job)
        self._notify(job)

    def _cancel_active_tasks(self, job: Job) -> None:
        for task in self.writer.active_tasks(job.id):
            self.writer.move_task(task, TaskState.CANCELLED)
            self.dispatcher.cancel(task.id)
            sub_id = (task.spec.get("subjob") or {}).get("id")
            sub = self.writer.job(sub_id) if sub_id else None
            if sub is not None and sub.state in JOB_ACTIVE:
                self._cancel(sub)

    def cancel_parent_of(self, job: Job) -> None:
        """A cancelled attached sub-job cancels its parent job too (SPEC §2.4)."""
        parent_task = self.writer.task(job.parent_id) if job.parent_id else None
        parent = self.writer.job(parent_task.job_id) if parent_task else None
        if parent is not None and parent.state in JOB_ACTIVE:
            self._cancel(parent)

    def restart_job(self, job_id: str) -> None:
        job = self.writer.job(job_id)
        if job is None:
            raise NotFound("job not found")
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise Conflict(f"job is {job.state} and can not be restarted")
        if job.position > len(job.tasks) or job.position < 1:
            raise Conflict("job has no more tasks to run")
        self.writer.move_job(job, JobState.RUNNING, failed_at=None, completed_at=None, error=None)
        self._finished.pop(job.id, None)
        task = self.new_task(job, job.tasks[job.position - 1], job.position)
        self.writer.create_tasks([task])
        self.handle_pending(job, task)

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


def new_job(spec: JobInput, created_by: User | None, parent_id: str | None) -> Job:
    """A PENDING job record from a validated job document."""
    body = to_dict(spec)
    return Job(
        name=spec.name,
        description=spec.description,
        tags=list(spec.tags or []),
        parent_id=parent_id,
        created_by=created_by or GUEST,
        task_count=len(spec.tasks),
        inputs=dict(spec.inputs or {}),
        secrets=dict(spec.secrets or {}),
        tasks=body["tasks"],
        output=spec.output,
        defaults=body.get("defaults"),
        webhooks=body.get("webhooks"),
        permissions=body.get("permissions"),
        auto_delete=body.get("autoDelete"),
    )
