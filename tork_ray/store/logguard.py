"""Log text redacted before it is stored: a stored part is searchable (FTS), so it must never hold a secret."""

# Log parts are not encrypted: they are searched by full text (SQLite FTS5 shadow tables, PostgreSQL
# tsvectors) and an index of ciphertext finds nothing. They are redacted instead, with the job's secrets and the
# values under secret-looking keys of the job and of the task's evaluated definition, by the same rules the API
# redacts with; and since a worker flushes its log wherever the text stands, a tail that could begin a secret
# is held back (PartRedactor) until the next part or the task's end.

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from tork_ray.domain.redact import PartRedactor


class LogGuards:
    """One PartRedactor per running task of this store, made on the task's first part and dropped by the
    task's final save (every task gets one: recovery fails or re-runs the lost ones). Thread-safe: the
    coordinator may append and save from worker threads."""

    def __init__(self, hidden_values: Callable[[str], tuple[Sequence[str], bool] | None]) -> None:
        # task id -> (values to hide, whether the task has ended); None for an unknown task.
        self._hidden_values = hidden_values
        self._guards: dict[str, PartRedactor] = {}
        self._lock = threading.Lock()

    def feed(self, task_id: str, text: str) -> str:
        with self._lock:
            guard = self._guards.get(task_id)
            if guard is not None:  # fed under the lock: a finish() cannot take the guard away half-way
                return guard.feed(text)
        # First part of this task here (or since a restart, which loses at most a held secret's prefix).
        found = self._hidden_values(task_id)
        hidden, ended = found if found is not None else ((), True)
        guard = PartRedactor(hidden)
        if ended:  # a part that arrives after its task ended: nothing follows it, hold nothing back
            return guard.feed(text) + guard.finish()
        with self._lock:
            return self._guards.setdefault(task_id, guard).feed(text)

    def finish(self, task_id: str) -> str:
        """What was held back of an ended task's log (redacted), possibly ""; the task is forgotten."""
        with self._lock:
            guard = self._guards.pop(task_id, None)
            return guard.finish() if guard is not None else ""


class JobHiddenCache:
    """What a job's task logs must hide that comes from the job itself, kept per job until the job is saved
    again. Reading a job for it costs the job's whole document (a `parallel` holds every child's definition),
    and each task's first log part needs it: without the cache a wide parallel read its job once per child.

    Only the coordinator's store writes jobs, and it calls `invalidate` after each commit that saved a job, so
    a value found here is never older than the stored job. A value read while its job was being saved is not
    kept (the read may have seen the row before the commit)."""

    def __init__(self, compute: Callable[[str], list[str] | None], capacity: int = 512) -> None:
        self._compute = compute
        self._capacity = capacity
        self._values: OrderedDict[str, list[str]] = OrderedDict()
        self._reading: dict[str, int] = {}  # job id -> reads in flight
        self._saved_during_read: set[str] = set()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> list[str] | None:
        """The job's values to hide, or None for a job that is not stored."""
        with self._lock:
            if (kept := self._values.get(job_id)) is not None:
                self._values.move_to_end(job_id)
                return kept
            self._reading[job_id] = self._reading.get(job_id, 0) + 1
        values: list[str] | None = None
        try:
            values = self._compute(job_id)
        finally:
            with self._lock:
                self._done_reading(job_id, values)
        return values

    def _done_reading(self, job_id: str, values: list[str] | None) -> None:
        stale = job_id in self._saved_during_read
        self._reading[job_id] -= 1
        if not self._reading[job_id]:
            del self._reading[job_id]
            self._saved_during_read.discard(job_id)
        if values is not None and not stale:
            self._values[job_id] = values
            if len(self._values) > self._capacity:
                self._values.popitem(last=False)

    def invalidate(self, job_ids: Iterable[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                self._values.pop(job_id, None)
                if job_id in self._reading:
                    self._saved_during_read.add(job_id)
