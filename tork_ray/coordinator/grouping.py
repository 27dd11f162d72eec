"""Group commits: the worker events that arrive in one turn of the coordinator's event loop, in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from tork_ray.coordinator.events import Event
from tork_ray.store.outage import StoreUnavailable

if TYPE_CHECKING:
    from tork_ray.coordinator.workqueue import WorkQueue

log = logging.getLogger(__name__)

# A task's start and its result each cost a transaction; when many tasks run at once their events come in
# bursts (Ray delivers results from its own thread, several per loop turn), and one commit for the burst is
# cheaper than one each. Nothing is acknowledged before its commit: each event's future is resolved after it.


@dataclass
class _Grouped:
    action: Callable[[], None]
    job_id: str | None
    what: str
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class EventGroup:
    """Collects outer events until the end of the loop turn, then runs them in one transaction. Should that
    fail, it is rolled back whole and each event runs again on its own (WorkQueue.run: a failing event rolls
    back only itself and fails only its job), so grouping changes how often the store commits, not what
    happens. A store outage past the retry limit fails every event of the group, as it would each alone."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue
        self._waiting: list[_Grouped] = []

    async def run(self, action: Callable[[], None], job_id: str | None, what: str) -> None:
        """Runs `action` as an outer event with the others of this loop turn; returns once it is stored."""
        item = _Grouped(action, job_id, what)
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._flush)
        self._waiting.append(item)
        await item.done

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        if len(group) > 1 and self._together(group):
            return
        for item in group:
            _settle(item, partial(self._queue.run, item.action, item.job_id, item.what))

    def _together(self, group: list[_Grouped]) -> bool:
        """True if the group was handled (stored, or refused by an outage); False to run each on its own."""
        queue = self._queue
        what = f"{len(group)} events in one transaction"
        try:
            rest = queue.writer.retry(partial(queue._transaction, partial(_each, group)), what)
        except StoreUnavailable as exc:
            log.error("%s were rolled back: %s", what, exc.message)
            for item in group:
                _settle(item, partial(_raise, exc))
            return True
        except Exception:
            log.debug("a group of events was rolled back: each is handled on its own", exc_info=True)
            queue._rolled_back()
            return False
        for job_id, events in _by_job(rest).items():  # what chunking left for a later turn, as run() does
            asyncio.get_running_loop().call_soon(queue._carry_on, events, job_id, f"the events of job {job_id}")
        for item in group:
            _settle(item, lambda: None)
        return True


def _each(group: list[_Grouped]) -> None:
    for item in group:
        item.action()


def _by_job(events: list[Event]) -> dict[str | None, list[Event]]:
    grouped: dict[str | None, list[Event]] = {}
    for event in events:
        job = getattr(event, "job", None)
        grouped.setdefault(job.id if job is not None else None, []).append(event)
    return grouped


def _raise(exc: Exception) -> None:
    raise exc


def _settle(item: _Grouped, run: Callable[[], None]) -> None:
    # Run even if its waiter was cancelled meanwhile: the event happened, only nobody waits for its answer.
    try:
        run()
    except Exception as exc:
        if not item.done.done():
            item.done.set_exception(exc)
        return
    if not item.done.done():
        item.done.set_result(None)
