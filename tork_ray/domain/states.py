"""Job and task states, and the one transition table every state write goes through (SPEC §4.2, §4.3)."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any


class JobState(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class TaskState(StrEnum):
    CREATED = "CREATED"
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    CANCELLED = "CANCELLED"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Outcome(Enum):
    """What the single writer does with a requested transition."""

    APPLY = "apply"
    # A duplicate or late event (a completion after a cancel, a stale retry's result): dropped quietly.
    IGNORE = "ignore"
    # A transition that no event sequence should produce: a bug, so the writer raises.
    REJECT = "reject"


JOB_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
JOB_ACTIVE = frozenset({JobState.SCHEDULED, JobState.RUNNING})
TASK_TERMINAL = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED, TaskState.STOPPED}
)
TASK_ACTIVE = frozenset({TaskState.CREATED, TaskState.PENDING, TaskState.SCHEDULED, TaskState.RUNNING})

J = JobState
T = TaskState

# None stands for "no record yet" (creation).
JOB_TRANSITIONS: dict[tuple[JobState | None, JobState], Outcome] = {
    (None, J.PENDING): Outcome.APPLY,
    (J.PENDING, J.SCHEDULED): Outcome.APPLY,
    # The first task failed to evaluate, or the job was cancelled before it started.
    (J.PENDING, J.FAILED): Outcome.APPLY,
    (J.PENDING, J.CANCELLED): Outcome.APPLY,
    (J.SCHEDULED, J.RUNNING): Outcome.APPLY,
    (J.SCHEDULED, J.COMPLETED): Outcome.APPLY,
    (J.SCHEDULED, J.FAILED): Outcome.APPLY,
    (J.SCHEDULED, J.CANCELLED): Outcome.APPLY,
    (J.RUNNING, J.COMPLETED): Outcome.APPLY,
    (J.RUNNING, J.FAILED): Outcome.APPLY,
    (J.RUNNING, J.CANCELLED): Outcome.APPLY,
    # A started event that arrives after another task already moved the job on.
    (J.RUNNING, J.SCHEDULED): Outcome.IGNORE,
    # Restart (SPEC §4.4).
    (J.FAILED, J.RUNNING): Outcome.APPLY,
    (J.CANCELLED, J.RUNNING): Outcome.APPLY,
}


TASK_TRANSITIONS: dict[tuple[TaskState | None, TaskState], Outcome] = {
    (None, T.PENDING): Outcome.APPLY,
    (None, T.CREATED): Outcome.APPLY,
    (None, T.FAILED): Outcome.APPLY,
    (T.CREATED, T.PENDING): Outcome.APPLY,
    (T.CREATED, T.CANCELLED): Outcome.APPLY,
    (T.CREATED, T.FAILED): Outcome.APPLY,
    (T.PENDING, T.SCHEDULED): Outcome.APPLY,
    (T.PENDING, T.RUNNING): Outcome.APPLY,  # composites run without a worker
    (T.PENDING, T.SKIPPED): Outcome.APPLY,
    (T.PENDING, T.COMPLETED): Outcome.APPLY,  # empty each, detached sub-job
    (T.PENDING, T.FAILED): Outcome.APPLY,
    (T.PENDING, T.CANCELLED): Outcome.APPLY,
    (T.SCHEDULED, T.RUNNING): Outcome.APPLY,
    (T.SCHEDULED, T.COMPLETED): Outcome.APPLY,  # the result can overtake the started event
    (T.SCHEDULED, T.FAILED): Outcome.APPLY,
    (T.SCHEDULED, T.CANCELLED): Outcome.APPLY,
    (T.RUNNING, T.COMPLETED): Outcome.APPLY,
    (T.RUNNING, T.FAILED): Outcome.APPLY,
    (T.RUNNING, T.CANCELLED): Outcome.APPLY,
    # Redelivery: the coordinator restarted while the task ran; it is queued to run again (no event from a
    # worker asks for SCHEDULED, so this is never a late event).
    (T.RUNNING, T.SCHEDULED): Outcome.APPLY,
    # Late events once a task has moved on.
    (T.RUNNING, T.PENDING): Outcome.IGNORE,
    (T.SCHEDULED, T.PENDING): Outcome.IGNORE,
}


def _not_in_table(current: StrEnum | None, target: StrEnum, terminal: frozenset[Any]) -> Outcome:
    """Pairs the tables leave out: a repeat, or anything after a terminal state, is a stale event; terminal
    states are sticky against every late event (a cancelled job stays cancelled, Q6). The rest is a bug."""
    if current is not None and current == target:
        return Outcome.IGNORE
    if current in terminal:
        return Outcome.IGNORE
    return Outcome.REJECT


def job_transition(current: JobState | None, target: JobState) -> Outcome:
    """The table's verdict for moving a job from `current` to `target`."""
    return JOB_TRANSITIONS.get((current, target)) or _not_in_table(current, target, JOB_TERMINAL)


def task_transition(current: TaskState | None, target: TaskState) -> Outcome:
    """The table's verdict for moving a task from `current` to `target`."""
    return TASK_TRANSITIONS.get((current, target)) or _not_in_table(current, target, TASK_TERMINAL)
