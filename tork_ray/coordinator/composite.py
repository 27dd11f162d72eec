"""Composite tasks: parallel, each and sub-jobs — expanding them and counting their children home."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from tork_ray.coordinator.events import CancelJob, EachChunk, Event, Pending, StartJob, TaskCompleted, TaskFailed
from tork_ray.coordinator.factory import inherited_secrets, new_job, new_task, task_context
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.evaluate import each_item_context
from tork_ray.domain.models import ITEM_KEY, Job, Task
from tork_ray.domain.states import JOB_ACTIVE, TASK_ACTIVE, JobState, TaskState
from tork_ray.errors import ExpressionError
from tork_ray.expr import evaluate, evaluate_expression
from tork_ray.settings import EACH_WINDOW, LimitsSettings
from tork_ray.spec.models import JobInput

# Stored children of an each read from the table at a time, as its window frees up.
PAGE = 256
# An each of more items than this is started a chunk of children at a time, each chunk a transaction and a turn
# of the coordinator's loop of its own (each_chunk): checking and storing 100,000 children in one held the loop,
# every other job's events and /health, for 8.5 s here (0.13-0.17 s a turn at most in chunks of 250, 0.31 s in
# chunks of 1,000, the whole start as long either way).
EACH_CHUNK = 250
CHECK, STORE, RELEASE = "check", "store", "release"  # the phases of a chunked start (each_chunk)


class Composites:
    """The parts of the engine that deal with tasks made of other tasks or jobs. What follows from their
    changes (a child to run, a parent completed) is posted as an event, never handled by a call back."""

    def __init__(
        self, writer: StateWriter, post: Callable[[Event], None], limits: LimitsSettings, each_window: int = EACH_WINDOW
    ) -> None:
        self.writer = writer
        self.post = post
        self.limits = limits
        self.each_window = max(1, each_window)  # coordinator.each.window
        # The eaches started in the open batch, whose stored children are not in the table yet: a child that
        # comes home in the same batch (skipped by its `if`) releases the next from here, not from the table.
        self._unstored: dict[str, _StoredChildren] = {}
        # The eaches whose start goes a chunk at a time (each_chunk): their list and context, until launched.
        self._starting: dict[str, tuple[list[Any], dict[str, Any]]] = {}
        # Per each: its next CREATED children read from the table (a page at a time), to release in list order.
        # Read ahead, not one by one: the children released in an open batch are still CREATED in the table.
        self._pages: dict[str, _Page] = {}

    def forget_windows(self) -> None:
        """Drops what was read or made ahead (after a batch was rolled back): read again from the table."""
        self._unstored.clear()
        self._pages.clear()

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
        """The first `live` children PENDING, held and launched; the rest CREATED, stored and not held (Tork
        stores them all at the start; holding them all cost 2.8 KiB an item, 270 MiB for 100,000): each one
        that comes home releases the next, in list order, from the table. `live` is each.concurrency, capped
        by coordinator.each.window, which is also the concurrency of an each that sets none: an each of more
        items than the window runs as if its concurrency were the window (README, coordinator.each.window)."""
        each = dict(task.spec["each"])
        try:
            items = _each_list(str(each["list"]), context, self.limits)
        except ExpressionError as exc:
            self._fail(task, exc.message)
            return
        concurrency = int(each.get("concurrency") or 0)
        each.update(size=len(items), completions=0, index=concurrency or len(items))
        live = self._live(concurrency)
        chunked = len(items) > EACH_CHUNK
        if chunked:
            each["_stored"] = 0  # the first child not stored yet (each_chunk): recovery carries on from it
        self.writer.move_task(task, TaskState.RUNNING, spec={**task.spec, "each": each}, completions=0)
        if not items:  # Decisions Q1: an empty list completes at once instead of hanging the job
            self._complete(job, task)
            return
        if chunked:
            self._starting[task.id] = (items, context)
            self.post(EachChunk(job, task, 0, CHECK))
            return
        stored = _StoredChildren(job, task, context, each, items, live, self.limits)
        # Every child is evaluated now, as Tork does, so that one that cannot be fails the each at its start;
        # the stored ones are evaluated again as they are written, a chunk at a time, rather than kept.
        children = [stored.child(index, TaskState.PENDING) for index in range(min(live, len(items)))]
        failed = _first_failed(children) or _first_failed(map(stored.child, range(live, len(items))))
        if failed is not None:  # nothing is created, nothing launched
            self._fail(task, failed.error or "error evaluating a child task")
            return
        if len(items) > live:
            self._unstored[task.id] = stored
            self.writer.create_stored(stored.rest)
            self.writer.after_commit(partial(self._stored, task.id))
        self._launch_children(job, task, children)

    def each_chunk(self, job: Job, task: Task, start: int, phase: str) -> None:
        """One chunk of a long each's start (EACH_CHUNK), then the next one posted, which the work queue handles
        in a transaction of its own in a later turn of the loop: its children from `start` checked (CHECK: all of
        them first, so that one that cannot be evaluated fails the each before anything is stored), then stored
        CREATED (STORE), then released PENDING from the table until its window is full (RELEASE), as its children
        coming home release more. Recovery carries on from `each._stored`, committed with each stored chunk."""
        live_job, live_task = self.writer.job(job.id), self.writer.task(task.id)
        if (
            live_job is None
            or live_job.state not in JOB_ACTIVE
            or live_task is None
            or live_task.state is not TaskState.RUNNING
        ):
            self._starting.pop(task.id, None)  # cancelled or failed meanwhile: the rest is never made
            return
        job, task = live_job, live_task
        if phase == RELEASE:
            self._release_chunk(job, task)
            return
        each = dict(task.spec["each"])
        try:
            items, context = self._each_list_of(job, task)
        except ExpressionError as exc:  # evaluated again after a restart, and now it fails
            self._fail(task, exc.message)
            return
        if len(items) != int(each["size"]):  # evaluated again after a restart, to another list
            self._starting.pop(task.id, None)
            self._fail(task, f"each.list evaluated to {len(items)} items after a restart, {each['size']} at the start")
            return
        stored = _StoredChildren(job, task, context, each, items, 0, self.limits)
        end = min(start + EACH_CHUNK, len(items))
        children = [stored.child(index) for index in range(start, end)]
        failed = _first_failed(children)  # when storing, only after a restart evaluated them otherwise
        if failed is not None:  # nothing is stored (or launched) from here on
            self._starting.pop(task.id, None)
            self._fail(task, failed.error or "error evaluating a child task")
            return
        if phase == CHECK:  # the next chunk to check, or the first to store
            self.post(EachChunk(job, task, end, CHECK) if end < len(items) else EachChunk(job, task, 0, STORE))
            return
        self.writer.create_stored(lambda: children)
        self.writer.update_task(task, spec={**task.spec, "each": {**each, "_stored": end}})
        self.post(EachChunk(job, task, end, STORE) if end < len(items) else EachChunk(job, task, 0, RELEASE))

    def resume_each(self, job: Job, task: Task) -> None:
        """Recovery: an each started a chunk at a time carries on from the mark committed with its last stored
        chunk: checked again from the start if nothing was stored (the checks are not stored), stored on from the
        mark, or, all stored, its window topped up (the release may have stopped half way)."""
        each = task.spec.get("each") or {}
        if "_stored" not in each:
            return  # not started a chunk at a time: its live children are resumed one by one
        stored, size = int(each["_stored"]), int(each["size"])
        phase = CHECK if stored == 0 else STORE if stored < size else RELEASE
        self.post(EachChunk(job, task, stored if phase == STORE else 0, phase))

    def _release_chunk(self, job: Job, task: Task) -> None:
        """Releases up to EACH_CHUNK stored children, as many as the window has room for; posts the next chunk if
        it is still not full. After a restart it tops the window up: no more than the window are ever live."""
        self._starting.pop(task.id, None)  # the list is not needed any more
        live = sum(1 for child in self.writer.children(task.id) if child.state in TASK_ACTIVE)
        room = self.window_of(task) - live
        released = 0
        while released < min(room, EACH_CHUNK) and self._release_next(job, task):
            released += 1
        if released == EACH_CHUNK and room > EACH_CHUNK:
            self.post(EachChunk(job, task, 0, RELEASE))

    def _each_list_of(self, job: Job, task: Task) -> tuple[list[Any], dict[str, Any]]:
        """A starting each's list and context: as its start evaluated them, or evaluated again in a coordinator
        that did not start it (a restart)."""
        known = self._starting.get(task.id)
        if known is None:
            context = task_context(job, task)
            items = _each_list(str(task.spec["each"]["list"]), context, self.limits)
            known = self._starting[task.id] = (items, context)
        return known

    def window_of(self, each: Task) -> int:
        """How many of the each's children are live at once (_live)."""
        return self._live(int(each.spec["each"].get("concurrency") or 0))

    def _live(self, concurrency: int) -> int:
        """How many of an each's children are live at once: its concurrency, capped by the window."""
        return min(concurrency or self.each_window, self.each_window)

    def _stored(self, parent_id: str) -> None:
        self._unstored.pop(parent_id, None)

    def _launch_children(self, job: Job, parent: Task, children: list[Task]) -> None:
        failed = _first_failed(children)
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
        """A job ended: its eaches' pages go; if it is an attached sub-job, its parent task follows (§2.4)."""
        for parent_id in [key for key, page in self._pages.items() if page.job_id == job.id]:
            del self._pages[parent_id]
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
        if kind == "each" and total > self._live(int(block.get("concurrency") or 0)):
            self._release_next(job, parent)

    def _release_next(self, job: Job, parent: Task) -> bool:
        """Moves the next CREATED child (in list order) to PENDING: the window stays full. It is read from the
        table (a page at a time, by the index on parent, state and item index), or made now if its each started
        in this batch. False if there was none."""
        unstored = self._unstored.get(parent.id)
        if unstored is not None:
            child = unstored.release()
            if child is None:
                return False
            self.writer.create_tasks([child])
        else:
            stored = self._next_stored(parent)
            child = self.writer.take(stored) if stored is not None else None
            if child is None or child.state is not TaskState.CREATED:
                return False
            self.writer.move_task(child, TaskState.PENDING)
        self.post(Pending(job, child))
        return True

    def _next_stored(self, parent: Task) -> Task | None:
        page = self._pages.get(parent.id)
        if page is None:
            page = self._pages[parent.id] = _Page(parent.job_id)
        if not page.tasks and not page.last:
            read = self.writer.store.created_children(parent.id, page.after, PAGE)
            page.tasks.extend(read)
            page.after = max([page.after, *(_item_index(task) for task in read)])
            # Every child was stored at the start: once a read comes short, none is left to read.
            page.last = len(read) < PAGE
        return page.tasks.popleft() if page.tasks else None

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


def _item_index(task: Task) -> int:
    return int(task.spec.get(ITEM_KEY, {}).get("index", 0))


class _Page:
    """An each's next CREATED children, read from the table in list order; `after` is the last index read,
    `last` says the table has no more."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.tasks: deque[Task] = deque()
        self.after = -1
        self.last = False


def _first_failed(children: Iterable[Task]) -> Task | None:
    return next((child for child in children if child.state is TaskState.FAILED), None)


class _StoredChildren:
    """An each's children past its window: made again from the list when they are written (`rest`, a chunk at
    a time inside the commit), or one by one when released before that (`release`, in the same batch)."""

    def __init__(
        self,
        job: Job,
        parent: Task,
        context: dict[str, Any],
        each: dict[str, Any],
        items: list[Any],
        live: int,
        limits: LimitsSettings,
    ) -> None:
        self._job, self._parent, self._context, self._each, self._items = job, parent, context, each, items
        self._limits = limits
        self._next = live  # the index of the first child not released yet

    def child(self, index: int, state: TaskState = TaskState.CREATED) -> Task:
        item_context = each_item_context(self._context, self._each.get("var"), index, self._items[index])
        parent = self._parent
        child = new_task(self._job, self._each["task"], parent.position, parent.id, item_context, state, self._limits)
        # Kept so that `if` (evaluated when the child leaves PENDING) sees the same item.
        child.spec[ITEM_KEY] = {"var": self._each.get("var"), "index": index, "value": self._items[index]}
        return child

    def release(self) -> Task | None:
        """The next child, PENDING, made now: the table does not have it yet, and `rest` will not write it."""
        if self._next >= len(self._items):
            return None
        self._next += 1
        return self.child(self._next - 1, TaskState.PENDING)

    def rest(self) -> Iterator[Task]:
        """The children not released, CREATED, in list order (called inside the commit, again on a retry)."""
        return (self.child(index) for index in range(self._next, len(self._items)))
