"""Which webhook fires for which change (SPEC §6.4), the payloads, and the `if` condition: pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.errors import ExpressionError
from tork_ray.expr import evaluate_expression
from tork_ray.settings import LimitsSettings

JOB_STATE_CHANGE = "job.StateChange"
JOB_PROGRESS = "job.Progress"
TASK_STATE_CHANGE = "task.StateChange"
TASK_PROGRESS = "task.Progress"
EVENTS = (JOB_STATE_CHANGE, JOB_PROGRESS, TASK_STATE_CHANGE, TASK_PROGRESS)
RESTART = "RESTART"  # a restart is reported as Tork's transient job state, not as the RUNNING it leads to

# Task states a change to fires task.StateChange: Tork has no task message for PENDING, CREATED or CANCELLED.
_TASK_REPORTED = frozenset({TaskState.SCHEDULED, TaskState.RUNNING, TaskState.SKIPPED, TaskState.FAILED})

# Go's field names of Tork's summaries, which webhook `if` conditions use (`job.State == 'COMPLETED'`).
JOB_GO_NAMES = {
    "id": "ID", "createdBy": "CreatedBy", "parentId": "ParentID", "inputs": "Inputs", "name": "Name",
    "description": "Description", "tags": "Tags", "state": "State", "createdAt": "CreatedAt",
    "startedAt": "StartedAt", "completedAt": "CompletedAt", "failedAt": "FailedAt", "position": "Position",
    "taskCount": "TaskCount", "result": "Result", "error": "Error", "progress": "Progress", "schedule": "Schedule",
}  # fmt: skip
TASK_GO_NAMES = {
    "id": "ID", "jobId": "JobID", "position": "Position", "progress": "Progress", "name": "Name",
    "description": "Description", "state": "State", "createdAt": "CreatedAt", "scheduledAt": "ScheduledAt",
    "startedAt": "StartedAt", "completedAt": "CompletedAt", "error": "Error", "result": "Result", "var": "Var",
    "tags": "Tags",
}  # fmt: skip
_TASK_SPEC_FIELDS = ("description", "var", "tags")
_ALWAYS = ("position", "createdAt")


@dataclass(frozen=True)
class Fired:
    """One event a change fires: its name, and the state its payload reports (None: the record's own)."""

    event: str
    state: str | None = None


def job_fired(old: JobState | None, new: JobState, changes: Mapping[str, Any]) -> Fired | None:
    """The event a job change fires. A new job reports PENDING; every real state change reports once (no
    duplicate FAILED: the writer drops stale transitions before they get here), except SCHEDULED, which Tork
    never reports; a restart (FAILED/CANCELLED -> RUNNING) reports RESTART. Progress: job.Progress."""
    if old is None:
        return Fired(JOB_STATE_CHANGE, new.value)
    if old is not new:
        if new is JobState.SCHEDULED:
            return None
        if new is JobState.RUNNING and old in (JobState.FAILED, JobState.CANCELLED):
            return Fired(JOB_STATE_CHANGE, RESTART)
        return Fired(JOB_STATE_CHANGE, new.value)
    return Fired(JOB_PROGRESS) if "progress" in changes else None


def task_fired(task: Task, old: TaskState | None, new: TaskState, changes: Mapping[str, Any]) -> Fired | None:
    """The event a task change fires: SCHEDULED, RUNNING (a worker's start, or a composite's), SKIPPED, FAILED
    (also a task created FAILED by its evaluation) and COMPLETED, except a composite completing through its
    children (Tork sends none for it; a detached sub-job's task, done at once, does report). Progress:
    task.Progress."""
    if old is not new:
        if new in _TASK_REPORTED:
            return Fired(TASK_STATE_CHANGE)
        if new is TaskState.COMPLETED and not _completes_by_children(task):
            return Fired(TASK_STATE_CHANGE)
        return None
    return Fired(TASK_PROGRESS) if "progress" in changes else None


def _completes_by_children(task: Task) -> bool:
    if "parallel" in task.spec or "each" in task.spec:
        return True
    subjob = task.spec.get("subjob")
    return isinstance(subjob, Mapping) and not subjob.get("detached")


def hook_event(hook: Mapping[str, Any]) -> str:
    """A webhook's event; "" (or none) is job.StateChange. Unknown values are kept: they never fire."""
    return str(hook.get("event") or JOB_STATE_CHANGE)


def job_summary(job: Job, state: str | None = None) -> dict[str, Any]:
    summary = job.summary()
    if state is not None:
        summary["state"] = state
    return summary


def task_summary(task: Task) -> dict[str, Any]:
    """Tork's TaskSummary: id, jobId, position, progress, name, description, state, createdAt, scheduledAt,
    startedAt, completedAt, error, result, var, tags (empty ones left out, as Go's omitempty)."""
    body = _task_values(task)
    return {k: v for k, v in body.items() if k in _ALWAYS or v not in (None, "", [], {}, 0, 0.0)}


def _task_values(task: Task) -> dict[str, Any]:
    dumped = task.model_dump(
        by_alias=True,
        mode="json",
        include={"id", "job_id", "position", "progress", "name", "state", "created_at", "scheduled_at"}
        | {"started_at", "completed_at", "error", "result"},
    )
    for key in _TASK_SPEC_FIELDS:
        if task.spec.get(key) is not None:
            dumped[key] = task.spec[key]
    return dumped


def condition_view(summary: Mapping[str, Any], go_names: Mapping[str, str]) -> dict[str, Any]:
    """A summary as `if` sees it: Tork's Go names and the JSON names alike. Empty texts are left out so that
    they read as "" (a missing key is "" in expressions); numbers are always there."""
    view = {key: value for key, value in summary.items() if value is not None}
    view.update({go: view[key] for key, go in go_names.items() if key in view})
    return view


def job_view(job: Job, state: str | None = None) -> dict[str, Any]:
    body = job.model_dump(by_alias=True, mode="json", exclude_none=True, include=set(Job.SUMMARY_FIELDS))
    if state is not None:
        body["state"] = state
    return condition_view(body, JOB_GO_NAMES)


def task_view(task: Task) -> dict[str, Any]:
    return condition_view(_task_values(task), TASK_GO_NAMES)


def condition_holds(condition: str | None, context: Mapping[str, Any], limits: LimitsSettings | None = None) -> bool:
    """A webhook's `if` (braces optional): fires only on the boolean true. Any other value, or an error, skips
    the call (SPEC §6.4), raised as ExpressionError for the caller to log."""
    if not condition or not condition.strip():
        return True
    value = evaluate_expression(condition, context, limits=limits)
    if not isinstance(value, bool):
        raise ExpressionError(f"webhook if must be a boolean, got {type(value).__name__}")
    return value
