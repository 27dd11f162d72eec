"""A task's start, reported to the coordinator only if the task is still running after a short delay.

Most tasks of a busy engine are short: reporting each start as its own actor call cost the coordinator a call
and a transaction per task, for a RUNNING state nobody could see before the result replaced it. So the start
is held back for `start_report_delay` seconds; a task that ends within it brings its start with its result
(see with_start: the coordinator stores RUNNING and the outcome in one transaction), and a longer one is
reported RUNNING when the delay is up, as before. One timer thread per worker process serves every task it
runs: no thread is started or joined per task."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)

# Deadlines closer than this are served by one wake of the timer thread. Most reports are withdrawn (their task
# ended first) but stay in the heap until their deadline: one wake per deadline was one thread switch per task
# of a busy worker. A start is thus reported up to SLACK_SECONDS after its delay.
SLACK_SECONDS = 0.02


class _Report:
    __slots__ = ("send", "settled")

    def __init__(self, send: Callable[[], object]) -> None:
        self.send = send
        self.settled = False  # sent, or withdrawn by its task's end: either way never sent (again)


class StartTimer:
    """Sends each scheduled report at its deadline unless it was withdrawn first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Report]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, send: Callable[[], object]) -> _Report:
        report = _Report(send)
        entry = (time.monotonic() + delay, next(self._seq), report)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="tork-start-report", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:  # the thread sleeps until a later deadline (or for ever): wake it
                self._cond.notify()
        return report

    def withdraw(self, report: _Report) -> bool:
        """True if the report had not been sent (and now never will be)."""
        with self._cond:
            unsent = not report.settled
            report.settled = True
            return unsent

    def _loop(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, report = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(max(left, SLACK_SECONDS))
                    continue
                heapq.heappop(self._heap)
                if report.settled:
                    continue
                report.settled = True
                self._cond.release()  # the send is a Ray call: never under the lock a task's end takes
                try:
                    report.send()
                except Exception:
                    log.exception("a task's start could not be reported")
                finally:
                    self._cond.acquire()


_timer = StartTimer()


def started_now() -> str:
    """The worker's clock at a task's start, as the outcome carries it (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


class StartReport:
    """The start of one task: sent at once (delay 0), or after `delay` s if the task runs that long."""

    def __init__(self, delay: float, send: Callable[[], object], timer: StartTimer = _timer) -> None:
        self._timer = timer
        self._report: _Report | None = None
        if delay <= 0:
            send()
        else:
            self._report = timer.schedule(delay, send)

    def __enter__(self) -> StartReport:
        return self

    def __exit__(self, *_exc: object) -> None:
        """The task ended (a result, an error, a cancel): a start not sent yet never is."""
        if self._report is not None:
            self._timer.withdraw(self._report)


def with_start(outcome: dict[str, str], node_id: str, started_at: str, ended_at: str | None = None) -> dict[str, str]:
    """The outcome with the task's start in it, always: the coordinator applies RUNNING first, in the same
    transaction as the outcome (a start it already stored is a repeat, and ignored). And its end on the worker's
    clock (`ended_at`, or now): the coordinator stamps the task's completedAt or failedAt with it, not with the
    moment the outcome reached it (an executor's report may hold an outcome back while other tasks run)."""
    return {**outcome, "nodeId": node_id, "startedAt": started_at, "endedAt": ended_at or started_now()}
