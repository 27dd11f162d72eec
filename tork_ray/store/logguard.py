"""Log text redacted before it is stored: a stored part is searchable (FTS), so it must never hold a secret."""

# Log parts are not encrypted: they are searched by full text (SQLite FTS5 shadow tables, PostgreSQL
# tsvectors) and an index of ciphertext finds nothing. They are redacted instead, with the job's secrets and the
# values under secret-looking keys of the job and of the task's evaluated definition, by the same rules the API
# redacts with; and since a worker flushes its log wherever the text stands, a tail that could begin a secret
# is held back (PartRedactor) until the next part or the task's end.

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

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
