"""The coordinator's scheduled-job operations (SPEC §6.1): create, pause, resume, delete, each idempotent by
its request id (coordinator/requests.py) and each a store transaction on the coordinator's I/O thread."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.requests import KeyReused, applied_job, request_row
from tork_ray.coordinator.scheduler import OffLoop, Scheduler
from tork_ray.domain.models import User
from tork_ray.domain.schedules import ScheduledJob, ScheduleState, new_scheduled_job, next_fire
from tork_ray.errors import Conflict, NotFound, TorkError
from tork_ray.spec.models import ScheduledJobInput
from tork_ray.store.schedules import (
    active_jobs,
    begin_delete,
    change_state,
    finish_delete,
    get_scheduled_job,
    insert_scheduled_job,
)
from tork_ray.store.store import Store

log = logging.getLogger(__name__)

# Request kinds in the requests table (at most 16 characters).
CREATE, PAUSE, RESUME, DELETE = "sched.create", "sched.pause", "sched.resume", "sched.delete"


class ScheduledJobs:
    """Writes of scheduled jobs, for the coordinator actor (the only writer); reads go to the store directly."""

    def __init__(self, store: Store, engine: Engine, scheduler: Scheduler, off_loop: OffLoop) -> None:
        self.store = store
        self.engine = engine
        self.scheduler = scheduler
        self._off_loop = off_loop

    async def create(
        self, spec: ScheduledJobInput, created_by: User | None, request_id: str | None, fingerprint: str = ""
    ) -> dict[str, Any]:
        """Stores the scheduled job ACTIVE and registers it; its summary. A repeated request id answers with
        the scheduled job the first call made."""
        known = await self._off_loop(applied_job, self.store, request_id, CREATE, fingerprint)
        if known is not None:
            return await self._summary(known)
        now = self.scheduler.clock.now()
        # Made and stored on the I/O thread: a document of hundreds of KB takes milliseconds to copy.
        scheduled, summary = await self._off_loop(self._store_new, spec, created_by, now, request_id, fingerprint)
        self.scheduler.register(scheduled)
        return summary

    def _store_new(
        self, spec: ScheduledJobInput, created_by: User | None, now: datetime, request_id: str | None, fingerprint: str
    ) -> tuple[ScheduledJob, dict[str, Any]]:
        scheduled = new_scheduled_job(spec, created_by, now)
        request = request_row(request_id, CREATE, scheduled.id, fingerprint) if request_id else None
        insert_scheduled_job(self.store, scheduled, request)
        return scheduled, scheduled.summary(next_fire(scheduled, now))

    async def _summary(self, scheduled_id: str) -> dict[str, Any]:
        scheduled = await self._off_loop(get_scheduled_job, self.store, scheduled_id)
        if scheduled is None:
            raise NotFound("scheduled job not found")
        return scheduled.summary(next_fire(scheduled, self.scheduler.clock.now()))

    async def pause(self, scheduled_id: str, request_id: str | None) -> None:
        """ACTIVE → PAUSED: no tick fires from now on (a tick firing at this moment is the last)."""
        if await self._seen(request_id, PAUSE, scheduled_id):
            return
        request = request_row(request_id, PAUSE, scheduled_id) if request_id else None
        args = (self.store, scheduled_id, ScheduleState.ACTIVE, ScheduleState.PAUSED, None, request)
        if not await self._off_loop(change_state, *args):
            await self._refuse(scheduled_id, "scheduled job is not active")
        self.scheduler.unregister(scheduled_id)

    async def resume(self, scheduled_id: str, request_id: str | None) -> None:
        """PAUSED → ACTIVE: the next tick after now fires; ticks that fell in the pause do not."""
        if await self._seen(request_id, RESUME, scheduled_id):
            return
        request = request_row(request_id, RESUME, scheduled_id) if request_id else None
        now = self.scheduler.clock.now()
        args = (self.store, scheduled_id, ScheduleState.PAUSED, ScheduleState.ACTIVE, now, request)
        if not await self._off_loop(change_state, *args):
            await self._refuse(scheduled_id, "scheduled job is not paused")
        scheduled = await self._off_loop(get_scheduled_job, self.store, scheduled_id)
        if scheduled is not None and scheduled.state is ScheduleState.ACTIVE:
            self.scheduler.register(scheduled)

    async def delete(self, scheduled_id: str, request_id: str | None) -> None:
        """Deletes the scheduled job and every job it spawned (with their sub-jobs, tasks, logs and tags).
        Marked DELETING first, so no coordinator fires it again; instances still active are cancelled (their
        tasks stopped) before their rows go. A delete cut short is finished by calling it again."""
        if await self._seen(request_id, DELETE, scheduled_id):
            return
        request = request_row(request_id, DELETE, scheduled_id) if request_id else None
        job_ids = await self._off_loop(begin_delete, self.store, scheduled_id, request)
        if job_ids is None:
            raise NotFound("scheduled job not found")
        self.scheduler.unregister(scheduled_id)
        for job_id in await self._off_loop(active_jobs, self.store, job_ids):
            with contextlib.suppress(TorkError):  # ended meanwhile: nothing to stop
                self.engine.cancel_job(job_id)
        await self._off_loop(finish_delete, self.store, scheduled_id, job_ids)
        for job_id in job_ids:
            self.engine.writer.forget_job(job_id)

    async def _seen(self, request_id: str | None, kind: str, scheduled_id: str) -> bool:
        known = await self._off_loop(applied_job, self.store, request_id, kind)
        if known is not None and known != scheduled_id:
            raise KeyReused("request id was already used for another scheduled job")
        return known is not None

    async def _refuse(self, scheduled_id: str, why: str) -> None:
        if await self._off_loop(get_scheduled_job, self.store, scheduled_id) is None:
            raise NotFound("scheduled job not found")
        raise Conflict(why)
