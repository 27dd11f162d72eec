"""The engine's work queue: an outer event and every event it causes, handled in order in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from functools import partial

from tork_ray.coordinator.events import Event
from tork_ray.coordinator.writer import StateWriter
from tork_ray.errors import TorkError
from tork_ray.store.outage import StoreUnavailable, is_outage

log = logging.getLogger(__name__)

# Past this many events, an outer event stops at the next point it can resume from (see _resumable), commits,
# and carries on from there in a later turn of the event loop: a job of 10,000 skipped tasks must not hold the
# coordinator's loop (every other call, /health's readiness) for seconds.
CHUNK_EVENTS = 500
LOOK_EVERY = 50  # events before looking again, after a look that walked the queue in vain


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
        """Runs one outer event: `action`, then every event it posts, in one transaction (a very long one, on
        the event loop: in several, each ending where recovery could carry on, see CHUNK_EVENTS). Follow-ups
        are handled depth first in the order posted (as the calls they replace were made), so an event's
        effects stay ordered. If anything raises, memory and store are rolled back; a refusal (a 4xx error)
        goes back to the caller as is, anything else is logged, fails job `job_id` with the reason, and is
        re-raised."""
        if self._posted is not None:  # called from inside an event: it becomes part of that event
            action()
            return
        try:
            # A read that meets an outage (the commit waits by itself, see StateWriter) rolls the event back;
            # nothing of it is stored, so it is handled again, whole, once the store answers.
            rest = self.writer.retry(partial(self._transaction, action), what)
        except Exception as exc:
            if isinstance(exc, TorkError) and exc.status_code < 500:
                raise
            if isinstance(exc, StoreUnavailable):  # no fault of the job's: it is left as it was stored
                log.error("%s was rolled back: %s", what, exc.message)
                raise
            self._event_failed(exc, job_id, what)
            raise
        if rest:  # committed so far; the rest is a new outer event, after whatever else waits on the loop
            asyncio.get_running_loop().call_soon(self._carry_on, rest, job_id, what)

    def _transaction(self, action: Callable[[], None]) -> list[Event]:
        try:
            with self.writer.batch():
                self._posted = []
                action()
                return self._drain(chunked=_in_event_loop())
        except Exception as exc:
            if is_outage(exc):
                self._rolled_back()
            raise
        finally:
            self._posted = None

    def _rolled_back(self) -> None:
        """Drops what a rolled back event may have left in caches the writer does not put back."""

    def _drain(self, chunked: bool) -> list[Event]:
        """Handles the posted events, depth first. With `chunked`, once past CHUNK_EVENTS it looks (every
        LOOK_EVERY events) whether all that is left can be resumed from; if so it stops there and returns
        those events, unhandled."""
        assert self._posted is not None
        work: deque[Event] = deque(self._posted)
        self._posted.clear()
        handled, next_look = 0, CHUNK_EVENTS
        while work:
            if chunked and handled >= next_look and self._resumable(work[0]):
                if all(self._resumable(event) for event in work):
                    return list(work)
                # A look that walked far and failed is not repeated at every event (it would be quadratic).
                next_look = handled + LOOK_EVERY
            event = work.popleft()
            self._handle(event)
            handled += self._weight(event)
            work.extendleft(reversed(self._posted))
            self._posted.clear()
        return []

    def _carry_on(self, events: list[Event], job_id: str | None, what: str) -> None:
        try:
            self.run(lambda: self._post_all(events), job_id, what)
        except Exception:  # already rolled back, logged and its job failed by run()
            log.debug("a continued event failed", exc_info=True)

    def _post_all(self, events: list[Event]) -> None:
        for event in events:
            self.post(event)

    def _resumable(self, event: Event) -> bool:
        """True if `event` may wait for a later transaction: what has been committed before it is a state
        recovery carries on from by itself, should the coordinator die in between."""
        return False

    def _weight(self, event: Event) -> int:
        """How many events' worth of work handling `event` is, against CHUNK_EVENTS."""
        return 1

    def _handle(self, event: Event) -> None:
        raise NotImplementedError

    def _event_failed(self, exc: Exception, job_id: str | None, what: str) -> None:
        raise NotImplementedError


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # called from plain code (tests, tools): no later turn to carry on in
        return False
    return True
