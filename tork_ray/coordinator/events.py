"""The events the engine handles from its work queue: what happened, to which job or task."""

from __future__ import annotations

from dataclasses import dataclass

from tork_ray.domain.models import Job, Task


@dataclass(frozen=True)
class StartJob:
    """A PENDING job sets off: its first task is created and handled."""

    job: Job


@dataclass(frozen=True)
class Pending:
    """A PENDING task (or one created FAILED by its evaluation) is to be skipped, run or queued."""

    job: Job
    task: Task


@dataclass(frozen=True)
class TaskCompleted:
    """A task COMPLETED or was SKIPPED: its parent or its job moves on."""

    task: Task


@dataclass(frozen=True)
class TaskFailed:
    """A task FAILED: a retry, or its parent or job fails. `retryable` is False for evaluation errors."""

    task: Task
    retryable: bool = True


@dataclass(frozen=True)
class JobFinished:
    """A job reached a final state: an attached sub-job's parent task follows."""

    job: Job


@dataclass(frozen=True)
class CancelJob:
    """Cancel a job that is still active (a sub-job of a cancelled parent, or the parent of a cancelled one)."""

    job: Job


@dataclass(frozen=True)
class EachChunk:
    """The next step of a long each's start (Composites.each_chunk): its children from `start` on checked, stored
    or released, by `phase` ("check", "store", "release")."""

    job: Job
    task: Task
    start: int
    phase: str


Event = StartJob | Pending | TaskCompleted | TaskFailed | JobFinished | CancelJob | EachChunk


def job_id_of(event: Event) -> str:
    """The job an event concerns: the one a failed event fails."""
    if isinstance(event, StartJob | Pending | JobFinished | CancelJob | EachChunk):
        return event.job.id
    return event.task.job_id


def describe(event: Event) -> str:
    name = type(event).__name__
    if isinstance(event, Pending | TaskCompleted | TaskFailed | EachChunk):
        return f"{name} of task {event.task.id}"
    return f"{name} of job {event.job.id}"
