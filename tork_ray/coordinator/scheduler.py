"""The cron scheduler of the coordinator: fires each ACTIVE scheduled job's ticks, one job per tick.

Exactly once is the store's doing (store/schedules.py: `fire` moves the fire mark by a conditional UPDATE in
the transaction that inserts the job), so a restart around a tick, or two coordinators over one store, cannot
make a tick twice. This loop only decides when to try: it keeps each schedule's mark and next due tick in
memory, sleeps until the earliest one (on an injectable Clock, so tests drive time without sleeping), and
does its store work through `off_loop` (the coordinator's I/O thread): nothing slow on the actor's loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from tork_ray.domain.models import Job
from tork_ray.domain.schedules import ScheduledJob, ScheduleState
from tork_ray.spec.cron import CronSchedule, latest_due, parse_cron
from tork_ray.store.schedules import CreationRows, active_scheduled_jobs, fire, get_scheduled_job
from tork_ray.store.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
OffLoop = Callable[..., Awaitable[Any]]  # off_loop(function, *args) -> the function's result
MAX_WAIT = 60.0  # s: even with nothing due sooner, look again this often (a clock that jumped, a lost wake-up)
RETRY_WAIT = 1.0  # s after a check that failed (the store is down): not a busy loop of errors


class Clock(Protocol):
    """Time as the scheduler sees it: tests pass one they move by hand."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


@dataclass
class _Entry:
    schedule: CronSchedule
    mark: datetime  # the fire mark as last seen in the store
    due: datetime  # the first tick after the mark


def _entry(scheduled: ScheduledJob) -> _Entry:
    schedule = parse_cron(scheduled.cron)
    return _Entry(schedule, scheduled.last_fired, schedule.next_after(scheduled.last_fired))


class Scheduler:
    """Fires due ticks of the registered (ACTIVE) scheduled jobs; `start(job)` sets each new job going."""

    def __init__(
        self,
        store: Store,
        start: Callable[[Job], None],
        clock: Clock | None = None,
        off_loop: OffLoop | None = None,
        along: CreationRows | None = None,
    ) -> None:
        self.store = store
        self._along = along  # rows each new instance brings into its transaction (its webhook calls)
        self.clock: Clock = clock or SystemClock()
        self._start = start
        self._off_loop: OffLoop = off_loop or _in_thread
        self._entries: dict[str, _Entry] = {}
        self._wake = asyncio.Event()

    # --- registry (the coordinator calls these as scheduled jobs are made, paused, resumed, deleted) ----

    def register(self, scheduled: ScheduledJob) -> None:
        """Takes `scheduled` on (again) from its stored mark; its next tick is fired once due."""
        self._entries[scheduled.id] = _entry(scheduled)
        self._wake.set()

    def unregister(self, scheduled_id: str) -> None:
        self._entries.pop(scheduled_id, None)

    def registered(self) -> set[str]:
        return set(self._entries)

    async def load(self) -> int:
        """Registers every ACTIVE scheduled job of the store (on start): a tick missed while the engine was
        down is due at once, and fires one catch-up job (see latest_due)."""
        entries = await self._off_loop(_load_entries, self.store)
        self._entries.update(entries)
        self._wake.set()
        return len(entries)

    # --- firing ---------------------------------------------------------------------------------------

    async def run_due(self) -> list[Job]:
        """Fires, once, the latest due tick of each registered scheduled job; the jobs this coordinator made."""
        now = self.clock.now()
        made: list[Job] = []
        for scheduled_id, entry in list(self._entries.items()):
            if entry.due > now:
                continue
            tick = latest_due(entry.schedule, entry.mark, now)
            if tick is None:
                continue
            job = await self._off_loop(fire, self.store, scheduled_id, entry.mark, tick, self._along)
            if job is None:  # fired elsewhere, paused or deleted meanwhile: take the stored state on
                await self._refresh(scheduled_id)
                continue
            if self._entries.get(scheduled_id) is entry:  # not paused, resumed or deleted while it fired
                entry.mark, entry.due = tick, entry.schedule.next_after(tick)
            made.append(job)
            try:
                self._start(job)
            except Exception:  # stored PENDING: the start's own failure handling (or recovery) has it
                log.exception("scheduled job %s: the start of job %s failed", scheduled_id, job.id)
        return made

    async def _refresh(self, scheduled_id: str) -> None:
        scheduled = await self._off_loop(get_scheduled_job, self.store, scheduled_id)
        if scheduled is None or scheduled.state is not ScheduleState.ACTIVE:
            self.unregister(scheduled_id)
        elif scheduled_id in self._entries:
            self._entries[scheduled_id] = _entry(scheduled)

    def next_due(self) -> datetime | None:
        return min((entry.due for entry in self._entries.values()), default=None)

    async def run(self) -> None:
        """Loads, then fires due ticks for ever. One check at a time: a check slower than a `@every 1s`
        period makes the next check fire one job for the latest tick, not one per tick missed meanwhile."""
        await self.load()
        while True:
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:  # a store hiccup: logged, and tried again a little later
                log.exception("scheduled jobs: a check failed")
                await self._sleep(RETRY_WAIT)
                continue
            nxt = self.next_due()
            wait = MAX_WAIT if nxt is None else (nxt - self.clock.now()).total_seconds()
            await self._sleep(min(max(wait, 0.0), MAX_WAIT))

    async def _sleep(self, seconds: float) -> None:
        """Until `seconds` have passed on the clock, or a scheduled job is registered (it may be due sooner)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (sleeper, waker):
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting


def _load_entries(store: Store) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for scheduled in active_scheduled_jobs(store):
        try:
            entries[scheduled.id] = _entry(scheduled)
        except Exception:  # validated at submit; a row that no longer parses must not stop the others
            log.exception("scheduled job %s: its cron %r does not parse; not scheduled", scheduled.id, scheduled.cron)
    return entries
