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
    """One PartRedactor per running task of this store, made on the task's first part. Thread-safe: the
    coordinator may append and save from worker threads."""

    def __init__(self, hidden_values: Callable[[str], tuple[Sequence[str], bool] | None]) -> None:
        # task id -> (values to hide, whether the task has ended); None for an unknown task.
        self._hidden_values = hidden_values
        self._guards: dict[str, PartRedactor] = {}
        self._lock = threading.Lock()

    def feed(self, task_id: str, text: str) -> str:
        with self._lock:
            guard = self._guards.get(task_id)
        if guard is None:
            found = self._hidden_values(task_id)
            hidden, ended = found if found is not None else ((), True)
            guard = PartRedactor(hidden)
            if ended:  # a part that arrives after its task ended: nothing follows it, hold nothing back
                return guard.feed(text) + guard.finish()
            with self._lock:
                guard = self._guards.setdefault(task_id, guard)
        with self._lock:
            return guard.feed(text)

    def finish(self, task_id: str) -> str:
        """What was held back of an ended task's log (redacted), possibly ""; the task is forgotten."""
        with self._lock:
            guard = self._guards.pop(task_id, None)
            return guard.finish() if guard is not None else ""

    def forget(self, task_ids: Sequence[str]) -> None:
        with self._lock:
            for task_id in task_ids:
                self._guards.pop(task_id, None)
