"""Counters of persisted state changes (jobs and tasks by final state, task durations) for /metrics."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from tork_ray.domain.states import JOB_TERMINAL, TASK_TERMINAL

# Seconds; a container task takes ~0.2 s at best, jobs of hours exist.
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_JOB_FINAL = frozenset(state.value for state in JOB_TERMINAL)
_TASK_FINAL = frozenset(state.value for state in TASK_TERMINAL)


@dataclass
class CounterSnapshot:
    """A copy of the counters, safe to send across Ray (plain data)."""

    jobs_finished: dict[str, int] = field(default_factory=dict)
    tasks_finished: dict[str, int] = field(default_factory=dict)
    # Cumulative counts per upper bound of DURATION_BUCKETS, then the count and sum of every observation.
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_count: int = 0
    duration_sum: float = 0.0


class TransitionCounters:
    """Fed by the Store's write path, which sees every change of state the coordinator persists.

    Counting there (rather than scanning tables per scrape) keeps a scrape cheap on 100,000s of rows; like any
    Prometheus counter, the values start from zero when the coordinator process starts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: Counter[str] = Counter()
        self._tasks: Counter[str] = Counter()
        self._buckets = [0] * len(DURATION_BUCKETS)
        self._count = 0
        self._sum = 0.0

    def job_changed(self, old: str | None, new: str) -> None:
        if new in _JOB_FINAL and old != new:
            with self._lock:
                self._jobs[new] += 1

    def task_changed(self, old: str | None, new: str, started: datetime | None, ended: datetime | None) -> None:
        if new not in _TASK_FINAL or old == new:
            return
        with self._lock:
            self._tasks[new] += 1
            # A skipped task never ran: its duration would only pull the distribution towards zero.
            if new != "SKIPPED" and started is not None and ended is not None:
                self._observe(max(0.0, (ended - started).total_seconds()))

    def _observe(self, seconds: float) -> None:
        self._count += 1
        self._sum += seconds
        for index, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self._buckets[index] += 1

    def snapshot(self) -> CounterSnapshot:
        with self._lock:
            return CounterSnapshot(dict(self._jobs), dict(self._tasks), list(self._buckets), self._count, self._sum)
