"""Composite tasks: parallel, each and sub-jobs — expanding them and counting their children home."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from tork_ray.coordinator.events import CancelJob, Event, Pending, StartJob, TaskCompleted, TaskFailed
from tork_ray.coordinator.factory import inherited_secrets, new_job, new_task
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.evaluate import each_item_context
from tork_ray.domain.models import ITEM_KEY, Job, Task
from tork_ray.domain.states import JOB_ACTIVE, JobState, TaskState
from tork_ray.errors import ExpressionError
from tork_ray.expr import evaluate, evaluate_expression
from tork_ray.settings import LimitsSettings
from tork_ray.spec.models import JobInput


class Composites:
    """The parts of the engine that deal with tasks made of other tasks or jobs. What follows from their
    changes (a child to run, a parent completed) is posted as an event, never handled by a call back."""

    def __init__(self, writer: StateWriter, post: Callable[[Event], None], limits: LimitsSettings) -> None:
        self.writer = writer
        self.post = post
        self.limits = limits
        # each parents' CREATED children, in list order, waiting for a free place in the concurrency window.
        self._waiting: dict[str, deque[str]] = {}

    def forget_windows(self) -> None:
        """Drops the cached each windows (after a rolled back event): they are rebuilt from the live tasks."""
        self._waiting.clear()

    def start(self, job: Job, task: Task, context: dict[str, Any]) -> None:
        """PENDING composite → RUNNING, its children created (and launched, within each.concurrency)."""
        if "parallel" in task.spec:
            self._start_parallel(job, task, context)
        elif "each" in task.spec:
            self._start_each(job, task, context)
        else:
            self._start_subjob(job, task)

    # --- parallel -------------------------------------------------------------------------------------

    def _start_parallel(self, job: Job, task: Task, context: dict[str, Any]) -> None:
        # "completions" in the block says the count is shown from now on; its value is Task.completions (0 here
        # even for a retry's copy of a spec that an older version stored its count in).
        parallel = {**task.spec["parallel"], "completions": 0}
        self.writer.move_task(task, TaskState.RUNNING, spec={**task.spec, "parallel": parallel}, completions=0)
        children = [
            new_task(job, definition, task.position, parent_id=task.id, context=context, limits=self.limits)
            for definition in parallel["tasks"]
        ]
        self._launch_children(job, task, children)

    # --- each -----------------------------------------------------------------------------------------

    def _start_each(self, job: Job, task: Task, context: dict[str, Any]) -> None:
        each = dict(task.spec["each"])
        try:
            items = _each_list(str(each["list"]), context, self.limits)
        except ExpressionError as exc:
            self._fail(task, exc.message)
            return
        concurrency = int(each.get("concurrency") or 0)
        each.update(size=len(items), completions=0, index=concurrency or len(items))
        self.writer.move_task(task, TaskState.RUNNING, spec={**task.spec, "each": each}, completions=0)
        if not items:  # Decisions Q1: an empty list completes at once instead of hanging the job
            self._complete(job, task)
            return
        children = []
        for index, value in enumerate(items):
            item_context = each_item_context(context, each.get("var"), index, value)
            state = TaskState.PENDING if not concurrency or index < concurrency else TaskState.CREATED
            child = new_task(job, each["task"], task.position, task.id, item_context, state, self.limits)
            # Kept so that `if` (evaluated when the child leaves PENDING) sees the same item.
            child.spec[ITEM_KEY] = {"var": each.get("var"), "index": index, "value": value}
            children.append(child)
        self._launch_children(job, task, children)

    def _launch_children(self, job: Job, parent: Task, children: list[Task]) -> None:
        failed = next((child for child in children if child.state is TaskState.FAILED), None)
        if failed is not None:  # one child could not be evaluated: the composite fails, nothing is launched
            self._fail(parent, failed.error or "error evaluating a child task")
            return
        self.writer.create_tasks(children)
        for child in children:
            if child.state is TaskState.PENDING:
                self.post(Pending(job, child))

    # --- sub-jobs -------------------------------------------------------------------------------------

    def _start_subjob(self, job: Job, task: Task) -> None:
        subjob = dict(task.spec["subjob"])
        detached = bool(subjob.get("detached"))
        spec = JobInput.model_validate(
            {
                key: subjob[key]
                for key in ("name", "description", "tasks", "inputs", "secrets", "output", "webhooks", "autoDelete")
                if subjob.get(key) is not None
            }
        )
        if detached:
            # Detached: an independent job that sees inputs only (SPEC §2.4, Q9); the task is done at once.
            spec = spec.model_copy(update={"secrets": None})
            child = new_job(spec, job.created_by, None, with_job_namespace=False)
            child.permissions = job.permissions  # who may see the parent may see what it started (SPEC §2.4)
            child.hidden = inherited_secrets(job, subjob)
            self.writer.create_job(child)
            self.writer.move_task(task, TaskState.COMPLETED, spec={**task.spec, "subjob": {**subjob, "id": child.id}})
            self.post(StartJob(child))
            self.post(TaskCompleted(task))
            return
        # An attached sub-job: context {inputs, secrets} only, owner and permissions inherited. The parent is
        # RUNNING with the child's id before the child starts: a child that finishes at once finds it waiting.
        child_job = new_job(spec, job.created_by, task.id, with_job_namespace=False)
        child_job.permissions = job.permissions
        child_job.hidden = inherited_secrets(job, subjob)
        self.writer.create_job(child_job)
        self.writer.move_task(task, TaskState.RUNNING, spec={**task.spec, "subjob": {**subjob, "id": child_job.id}})
        self.post(StartJob(child_job))

    def job_finished(self, job: Job) -> None:
        """A job ended: forget its each windows; if it is an attached sub-job, its parent task follows (§2.4)."""
        for parent_id in list(self._waiting):
            parent = self.writer.task(parent_id)
            if parent is None or parent.job_id == job.id or parent.state is not TaskState.RUNNING:
                self._waiting.pop(parent_id, None)
        if not job.parent_id:
            return
        parent = self.writer.task(job.parent_id)
        if parent is None or parent.state is not TaskState.RUNNING:
            return
        if job.state is JobState.COMPLETED:
            if self.writer.move_task(parent, TaskState.COMPLETED, result=job.result):
                self.post(TaskCompleted(parent))
        elif job.state is JobState.FAILED:
            self._fail(parent, job.error or "sub-job failed")
        elif job.state is JobState.CANCELLED:
            # A cancelled attached sub-job cancels its parent job too (SPEC §2.4).
            parent_job = self.writer.job(parent.job_id)
            if parent_job is not None and parent_job.state in JOB_ACTIVE:
                self.post(CancelJob(parent_job))

    # --- children coming home -------------------------------------------------------------------------

    def child_completed(self, job: Job, child: Task) -> None:
        parent = self.writer.task(child.parent_id or "")
        if parent is None or parent.state is not TaskState.RUNNING:
            return
        kind = "parallel" if "parallel" in parent.spec else "each"
        block = parent.spec[kind]
        total = len(block["tasks"]) if kind == "parallel" else int(block["size"])
        # The count only: the spec (every child's definition, for a parallel) is not written per child.
        if self.writer.count_completion(parent) >= total:
            self._complete(job, parent)
            return
        if kind == "each" and block.get("concurrency"):
            self._release_next(job, parent)

    def _release_next(self, job: Job, parent: Task) -> None:
        """Moves the next CREATED child (in list order) to PENDING: each.concurrency keeps its window full."""
        waiting = self._waiting.get(parent.id)
        if waiting is None:  # first release since this coordinator started: rebuild the order from the live set
            created = [t for t in self.writer.children(parent.id) if t.state is TaskState.CREATED]
            waiting = deque(t.id for t in sorted(created, key=lambda t: int(t.spec.get(ITEM_KEY, {}).get("index", 0))))
            self._waiting[parent.id] = waiting
        while waiting:
            child = self.writer.task(waiting.popleft())
            if child is not None and child.state is TaskState.CREATED:
                self.writer.move_task(child, TaskState.PENDING)
                self.post(Pending(job, child))
                break
        if not waiting:
            self._waiting.pop(parent.id, None)

    def _complete(self, job: Job, task: Task) -> None:
        if self.writer.move_task(task, TaskState.COMPLETED):
            self.post(TaskCompleted(task))

    def _fail(self, task: Task, error: str) -> None:
        if self.writer.move_task(task, TaskState.FAILED, error=error):
            self.post(TaskFailed(task))


def _each_list(expression: str, context: dict[str, Any], limits: LimitsSettings) -> list[Any]:
    """each.list: braces optional; must yield a list (SPEC §2.3). The expression layer refuses any value of more
    than limits.each.items items, an input's list included."""
    stripped = expression.strip()
    if stripped.startswith("{{"):
        value = evaluate(stripped, context, limits=limits)
    else:
        value = evaluate_expression(stripped, context, limits=limits)
    if not isinstance(value, list | tuple):
        raise ExpressionError("each.list does not evaluate to a list")
    return list(value)
