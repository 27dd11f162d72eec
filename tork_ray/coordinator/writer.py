"""The one guarded write path for job and task state: the transition table decides, the store persists."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol

from tork_ray.coordinator.undo import UndoLog
from tork_ray.domain.models import Job, Task, utcnow
from tork_ray.domain.states import (
    JOB_TERMINAL,
    TASK_ACTIVE,
    JobState,
    Outcome,
    TaskState,
    job_transition,
    task_transition,
)
from tork_ray.errors import TorkError
from tork_ray.store.outage import StoreRetry
from tork_ray.store.store import Store
from tork_ray.store.writes import JOB_PROGRESS_COLUMNS

log = logging.getLogger(__name__)

_JOB_STAMPS = {
    JobState.SCHEDULED: "started_at",
    JobState.COMPLETED: "completed_at",
    JobState.FAILED: "failed_at",
}
_TASK_STAMPS = {
    TaskState.SCHEDULED: "scheduled_at",
    TaskState.RUNNING: "started_at",
    TaskState.COMPLETED: "completed_at",
    TaskState.SKIPPED: "completed_at",
    TaskState.FAILED: "failed_at",
}


_PROGRESS_COLUMNS = frozenset(JOB_PROGRESS_COLUMNS)
# Active tasks the coordinator holds while they are live; CREATED ones are stored only (see active_tasks).
_HELD_ACTIVE = TASK_ACTIVE - {TaskState.CREATED}


class IllegalTransition(TorkError):
    """A transition the table rejects: a bug in a handler, never a user's doing."""


class ChangeWatcher(Protocol):
    """Sees every change as it is made, inside its transaction (webhooks write their outbox rows with it)."""

    def job_changed(self, job: Job, old: JobState | None, changes: dict[str, Any]) -> None: ...

    def task_changed(self, task: Task, old: TaskState | None, changes: dict[str, Any]) -> None: ...


class StateWriter:
    """Holds the live jobs and tasks in memory and writes every change through the transition table."""

    def __init__(self, store: Store, retry: StoreRetry | None = None) -> None:
        self.store = store
        # A commit that meets an outage waits and is tried again, the same rows (outage.py); past the limit it is
        # rolled back like any failed commit and StoreUnavailable says why.
        self.retry = retry or StoreRetry()
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, Task] = {}
        # Live children by parent: an each of thousands of items must not scan every live task per completion.
        self._by_parent: dict[str, dict[str, Task]] = {}
        # Changes made inside batch(), written in one transaction when the outermost batch ends.
        self._unsaved_jobs: dict[str, Job] = {}
        self._unsaved_tasks: dict[str, Task] = {}
        # Composites whose count of children alone changed: written as that count, not as the whole row.
        self._unsaved_counts: dict[str, Task] = {}
        # Jobs changed outside their progress columns since their last commit (new ones included): saved whole.
        # Every other job is saved narrow, its document not serialised nor written again (store/writes.py). Kept
        # past a rolled back commit: the undo put the fields back, and one whole write too many is harmless.
        self._whole_jobs: set[str] = set()
        # Tasks made for the open batch that are stored, not held (an each's children past its window), and
        # jobs whose stored CREATED tasks the batch cancels: both left to the store, in the same transaction.
        self._streams: list[Callable[[], Iterable[Task]]] = []
        self._cancel_created: set[str] = set()
        self._depth = 0
        # What the open batch changed in memory (put back if it fails), and what it asked to do once stored.
        self._undo = UndoLog()
        self._effects: list[Callable[[], None]] = []
        self._extra: dict[str, list[Any]] = {}
        self._watcher: ChangeWatcher | None = None

    def watch(self, watcher: ChangeWatcher) -> None:
        self._watcher = watcher

    def stage(self, table: str, rows: list[Any]) -> None:
        """Rows stored with the change being made now (a watcher's): unlike save_with, never committed alone,
        even outside a batch, so they exist exactly when that change does."""
        self._extra.setdefault(table, []).extend(rows)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every change one event causes is stored in one transaction: whole or not at all, and one commit
        instead of one per change (a submit's start makes three). If the block raises, or the commit fails,
        nothing is stored and the live records and caches are put back as they were before the block."""
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._rollback()
            raise
        self._depth -= 1
        if self._depth == 0:
            self._commit()

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Runs `effect` once the open batch is stored (at once outside a batch); never if it is rolled back.
        Whatever leaves the coordinator (a task launched on Ray, a cancel, a waiter woken) waits for the
        change that explains it to be durable."""
        if self._depth == 0:
            effect()
        else:
            self._effects.append(effect)

    def save_with(self, table: str, rows: list[Any]) -> None:
        """Rows of another kind (request ids, ...) to store in the same transaction as the open batch."""
        self._extra.setdefault(table, []).extend(rows)
        if self._depth == 0:
            self._commit()

    def _commit(self) -> None:
        jobs, tasks = list(self._unsaved_jobs.values()), list(self._unsaved_tasks.values())
        # A composite saved whole in this transaction (it completed, failed) carries its count in its row.
        counts = {i: t.completions for i, t in self._unsaved_counts.items() if i not in self._unsaved_tasks}
        extra, effects = self._extra, self._effects
        streams, cancel_created = self._streams, self._cancel_created
        self._unsaved_jobs, self._unsaved_tasks, self._unsaved_counts = {}, {}, {}
        self._extra, self._effects, self._streams, self._cancel_created = {}, [], [], set()
        if jobs or tasks or extra or counts or streams or cancel_created:
            narrow = {job.id for job in jobs if job.id not in self._whole_jobs}
            save = partial(
                self.store.save,
                jobs=jobs,
                tasks=tasks,
                extra=extra,
                completions=counts,
                narrow=narrow,
                streams=streams,
                cancel_created=cancel_created,
            )
            try:
                self.retry(save, "a state change")
            except BaseException:
                self._undo.undo()
                raise
            self._whole_jobs.difference_update(job.id for job in jobs)
        self._undo.clear()
        for effect in effects:
            try:
                effect()
            except Exception:  # the change is stored; a failed side effect must not hide that from the caller
                log.exception("an effect of a stored change failed")

    def _rollback(self) -> None:
        self._unsaved_jobs, self._unsaved_tasks, self._unsaved_counts = {}, {}, {}
        self._extra, self._effects, self._streams, self._cancel_created = {}, [], [], set()
        self._undo.undo()

    def _persist(self, jobs: Iterable[Job] = (), tasks: Iterable[Task] = ()) -> None:
        self._unsaved_jobs.update((job.id, job) for job in jobs)
        self._unsaved_tasks.update((task.id, task) for task in tasks)
        if self._depth == 0:
            self._commit()

    # --- reads through the cache ----------------------------------------------------------------------

    def job(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id) or self._unsaved_jobs.get(job_id)
        if job is None:
            job = self.store.get_job(job_id)
            if job is not None and job.state not in JOB_TERMINAL:
                self._jobs[job_id] = job
        return job

    def task(self, task_id: str) -> Task | None:
        task = self._tasks.get(task_id) or self._unsaved_tasks.get(task_id)
        if task is None:
            task = self.store.get_task(task_id)
            if task is not None and task.state in TASK_ACTIVE:
                self._remember(task)
        return task

    def take(self, task: Task) -> Task:
        """A task the caller read from the store: the live copy if one is held, else this one, held from now
        on if it is active (as task() would, without reading it again)."""
        live = self._tasks.get(task.id) or self._unsaved_tasks.get(task.id)
        if live is not None:
            return live
        if task.state in TASK_ACTIVE:
            self._remember(task)
        return task

    def job_tasks(self, job_id: str, states: frozenset[TaskState] | None = None) -> list[Task]:
        """All task instances of a job (in `states` only, when given), preferring the live copies, including
        those not stored yet."""
        stored = self.store.job_tasks(job_id, states)
        known = {task.id for task in stored}
        tasks = [self._tasks.get(task.id) or self._unsaved_tasks.get(task.id) or task for task in stored]
        tasks += [t for t in self._unsaved_tasks.values() if t.job_id == job_id and t.id not in known]
        return tasks if states is None else [task for task in tasks if task.state in states]

    def active_tasks(self, job_id: str) -> list[Task]:
        """The job's active tasks but the CREATED ones: those are each children past the window, stored and
        not held (an each of 100,000 items must not be loaded whole), which cancel_created ends in bulk and
        their each releases one by one (composite.py)."""
        return self.job_tasks(job_id, _HELD_ACTIVE)

    def children(self, parent_id: str) -> list[Task]:
        return list(self._by_parent.get(parent_id, {}).values())

    # --- writes ---------------------------------------------------------------------------------------

    def create_job(self, job: Job) -> None:
        self._check_job(None, job.state, job.id)
        self._undo.set(self._jobs, job.id, job)
        self._whole_jobs.add(job.id)
        self.store.expect_new(jobs=[job])
        if self._watcher is not None:
            self._watcher.job_changed(job, None, {})
        self._persist(jobs=[job])

    def create_stored(self, make: Callable[[], Iterable[Task]]) -> None:
        """New CREATED tasks that `make` yields, stored with the open batch and not kept in memory: the store
        inserts them a chunk at a time (Store.save), calling `make` anew if the commit is tried again. No
        watcher sees them (CREATED fires nothing) and no undo is needed: a rolled back batch drops `make`."""
        self._streams.append(make)
        if self._depth == 0:
            self._commit()

    def cancel_created(self, job_id: str) -> None:
        """CANCELLED, in bulk with the open batch, every stored CREATED task of the job (see active_tasks)."""
        self._cancel_created.add(job_id)
        if self._depth == 0:
            self._commit()

    def create_tasks(self, tasks: list[Task]) -> None:
        for task in tasks:
            self._check_task(None, task.state, task.id)
            self._remember(task)
            if self._watcher is not None:
                self._watcher.task_changed(task, None, {})
        self.store.expect_new(tasks=tasks)
        self._persist(tasks=tasks)

    def move_job(self, job: Job, target: JobState, **changes: Any) -> bool:
        """Moves `job` to `target` with `changes` if the table allows; False when the event is stale."""
        if not self._check_job(job.state, target, job.id):
            return False
        stamp = _JOB_STAMPS.get(target)
        if stamp and stamp not in changes and getattr(job, stamp) is None:
            changes[stamp] = utcnow()
        old = job.state
        self._apply_to_job(job, {"state": target, **changes})
        if self._watcher is not None:
            self._watcher.job_changed(job, old, changes)
        if target in JOB_TERMINAL:
            self._undo.pop(self._jobs, job.id)
        else:
            self._undo.set(self._jobs, job.id, job)
        self._persist(jobs=[job])
        return True

    def move_task(self, task: Task, target: TaskState, **changes: Any) -> bool:
        if not self._check_task(task.state, target, task.id):
            return False
        stamp = _TASK_STAMPS.get(target)
        if stamp and stamp not in changes:
            changes[stamp] = utcnow()
        if target is TaskState.SKIPPED:
            changes.setdefault("scheduled_at", utcnow())
            changes.setdefault("started_at", utcnow())
        old = task.state
        self._apply(task, {"state": target, **changes})
        if self._watcher is not None:
            self._watcher.task_changed(task, old, changes)
        if target in TASK_ACTIVE:
            self._remember(task)
        else:
            self._forget(task)
        self._persist(tasks=[task])
        return True

    def update_job(self, job: Job, **changes: Any) -> None:
        """Changes fields other than the state (context, position, progress)."""
        self._apply_to_job(job, changes)
        if self._watcher is not None:
            self._watcher.job_changed(job, job.state, changes)
        self._persist(jobs=[job])

    def update_task(self, task: Task, **changes: Any) -> None:
        self._apply(task, changes)
        if self._watcher is not None:
            self._watcher.task_changed(task, task.state, changes)
        self._persist(tasks=[task])

    def count_completion(self, task: Task) -> int:
        """One more child of the composite `task` came home; its new count. Only the count is stored (one
        narrow UPDATE): the spec, which for a parallel holds every child, is not written again per child."""
        changes = {"completions": task.completions + 1}
        self._apply(task, changes)
        if self._watcher is not None:
            self._watcher.task_changed(task, task.state, changes)
        self._unsaved_counts[task.id] = task
        if self._depth == 0:
            self._commit()
        return task.completions

    def forget_job(self, job_id: str) -> None:
        self._undo.pop(self._jobs, job_id)
        self._whole_jobs.discard(job_id)
        for task in [t for t in self._tasks.values() if t.job_id == job_id]:
            self._forget(task)

    def _remember(self, task: Task) -> None:
        self._undo.set(self._tasks, task.id, task)
        if task.parent_id:
            siblings = self._by_parent.get(task.parent_id)
            if siblings is None:
                siblings = {}
                self._undo.set(self._by_parent, task.parent_id, siblings)
            self._undo.set(siblings, task.id, task)

    def _forget(self, task: Task) -> None:
        self._undo.pop(self._tasks, task.id)
        siblings = self._by_parent.get(task.parent_id or "")
        if siblings is not None:
            self._undo.pop(siblings, task.id)
            if not siblings:
                self._undo.pop(self._by_parent, task.parent_id or "")

    def _apply_to_job(self, job: Job, changes: dict[str, Any]) -> None:
        if not _PROGRESS_COLUMNS.issuperset(changes):
            self._whole_jobs.add(job.id)
        self._apply(job, changes)

    def _apply(self, model: Job | Task, changes: dict[str, Any]) -> None:
        self._undo.touch(model)
        for name, value in changes.items():
            setattr(model, name, value)

    @staticmethod
    def _check_job(current: JobState | None, target: JobState, job_id: str) -> bool:
        return _verdict(job_transition(current, target), f"job {job_id}", current, target)

    @staticmethod
    def _check_task(current: TaskState | None, target: TaskState, task_id: str) -> bool:
        return _verdict(task_transition(current, target), f"task {task_id}", current, target)


def _verdict(outcome: Outcome, what: str, current: object, target: object) -> bool:
    """True to apply; False for a stale event (logged, dropped); raises for a transition no event makes."""
    if outcome is Outcome.REJECT:
        raise IllegalTransition(f"{what}: illegal transition {current} -> {target}")
    if outcome is Outcome.IGNORE:
        log.debug("%s: ignoring stale transition %s -> %s", what, current, target)
    return outcome is Outcome.APPLY
