"""The engine's work queue: an outer event and every event it causes, handled in order in one transaction."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tork_ray.coordinator.events import Event
from tork_ray.coordinator.writer import StateWriter
from tork_ray.errors import TorkError


class WorkQueue:
    """Events are handled from a queue, not by handlers calling each other: a job of 10,000 skipped tasks is
    a loop of 10,000 steps, not a recursion 10,000 deep. Subclasses handle one event (`_handle`) and decide
    what a failed outer event does (`_event_failed`)."""

    def __init__(self, writer: StateWriter) -> None:
        self.writer = writer
        # Events posted by the handler running now; None when no outer event is being handled.
        self._posted: list[Event] | None = None

    def post(self, event: Event) -> None:
        """Queues `event` to be handled once the current handler returns, inside the same transaction."""
        if self._posted is None:
            raise RuntimeError("post() outside run()")  # a bug: events belong to an outer event
        self._posted.append(event)

    def run(self, action: Callable[[], None], job_id: str | None, what: str) -> None:
        """Runs one outer event: `action`, then every event it posts, in one transaction. Follow-ups are
        handled depth first in the order posted (as the calls they replace were made), so an event's effects
        stay ordered. If anything raises, memory and store are rolled back; a refusal (a 4xx error) goes back
        to the caller as is, anything else is logged, fails job `job_id` with the reason, and is re-raised."""
        if self._posted is not None:  # called from inside an event: it becomes part of that event
            action()
            return
        try:
            with self.writer.batch():
                self._posted = []
                action()
                self._drain()
        except Exception as exc:
            self._posted = None
            if isinstance(exc, TorkError) and exc.status_code < 500:
                raise
            self._event_failed(exc, job_id, what)
            raise
        finally:
            self._posted = None

    def _drain(self) -> None:
        assert self._posted is not None
        work: deque[Event] = deque(self._posted)
        self._posted.clear()
        while work:
            self._handle(work.popleft())
            work.extendleft(reversed(self._posted))
            self._posted.clear()

    def _handle(self, event: Event) -> None:
        raise NotImplementedError

    def _event_failed(self, exc: Exception, job_id: str | None, what: str) -> None:
        raise NotImplementedError
