"""The transition tables, over every (from, to) pair."""

from __future__ import annotations

import itertools

import pytest

from tork_ray.domain.states import (
    JOB_TERMINAL,
    TASK_TERMINAL,
    JobState,
    Outcome,
    TaskState,
    job_transition,
    task_transition,
)

J, T = JobState, TaskState

JOB_APPLY = {
    (None, J.PENDING),
    (J.PENDING, J.SCHEDULED),
    (J.PENDING, J.FAILED),
    (J.PENDING, J.CANCELLED),
    (J.SCHEDULED, J.RUNNING),
    (J.SCHEDULED, J.COMPLETED),
    (J.SCHEDULED, J.FAILED),
    (J.SCHEDULED, J.CANCELLED),
    (J.RUNNING, J.COMPLETED),
    (J.RUNNING, J.FAILED),
    (J.RUNNING, J.CANCELLED),
    (J.FAILED, J.RUNNING),
    (J.CANCELLED, J.RUNNING),
}
TASK_APPLY = {
    (None, T.PENDING),
    (None, T.CREATED),
    (None, T.FAILED),
    (T.CREATED, T.PENDING),
    (T.CREATED, T.CANCELLED),
    (T.CREATED, T.FAILED),
    (T.PENDING, T.SCHEDULED),
    (T.PENDING, T.RUNNING),
    (T.PENDING, T.SKIPPED),
    (T.PENDING, T.COMPLETED),
    (T.PENDING, T.FAILED),
    (T.PENDING, T.CANCELLED),
    (T.SCHEDULED, T.RUNNING),
    (T.SCHEDULED, T.COMPLETED),
    (T.SCHEDULED, T.FAILED),
    (T.SCHEDULED, T.CANCELLED),
    (T.RUNNING, T.COMPLETED),
    (T.RUNNING, T.FAILED),
    (T.RUNNING, T.CANCELLED),
    (T.RUNNING, T.SCHEDULED),  # redelivery after a coordinator restart
}
TASK_LATE = {(T.RUNNING, T.PENDING), (T.SCHEDULED, T.PENDING)}


def expected_job(current: JobState | None, target: JobState) -> Outcome:
    if (current, target) in JOB_APPLY:
        return Outcome.APPLY
    if current == target or current in JOB_TERMINAL or (current, target) == (J.RUNNING, J.SCHEDULED):
        return Outcome.IGNORE
    return Outcome.REJECT


def expected_task(current: TaskState | None, target: TaskState) -> Outcome:
    if (current, target) in TASK_APPLY:
        return Outcome.APPLY
    if current == target or current in TASK_TERMINAL or (current, target) in TASK_LATE:
        return Outcome.IGNORE
    return Outcome.REJECT


@pytest.mark.parametrize(("current", "target"), list(itertools.product([None, *JobState], JobState)))
def test_every_job_pair(current: JobState | None, target: JobState) -> None:
    assert job_transition(current, target) is expected_job(current, target)


@pytest.mark.parametrize(("current", "target"), list(itertools.product([None, *TaskState], TaskState)))
def test_every_task_pair(current: TaskState | None, target: TaskState) -> None:
    assert task_transition(current, target) is expected_task(current, target)


def test_late_completion_after_cancel_is_ignored() -> None:
    assert task_transition(T.CANCELLED, T.COMPLETED) is Outcome.IGNORE
    assert task_transition(T.CANCELLED, T.FAILED) is Outcome.IGNORE
    assert job_transition(J.CANCELLED, J.FAILED) is Outcome.IGNORE


def test_a_stale_retry_result_cannot_reopen_a_finished_task() -> None:
    for terminal in TASK_TERMINAL:
        for target in (T.RUNNING, T.SCHEDULED, T.COMPLETED):
            assert task_transition(terminal, target) is not Outcome.APPLY


def test_completed_job_cannot_restart() -> None:
    assert job_transition(J.COMPLETED, J.RUNNING) is Outcome.IGNORE
