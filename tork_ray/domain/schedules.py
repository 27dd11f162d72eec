"""A scheduled job (SPEC §6.1, §5.1) as the coordinator and the API see it, free of SQL and Ray."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from tork_ray.domain.evaluate import job_context
from tork_ray.domain.models import GUEST, Job, User, _drop_empty, _Model, new_id, utcnow
from tork_ray.errors import TorkError
from tork_ray.spec.cron import parse_cron, upcoming
from tork_ray.spec.models import ScheduledJobInput, to_dict


class ScheduleState(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    DELETING = "DELETING"  # a delete under way (its instances are being removed); never fires


# The job fields an instance copies from its scheduled job (SPEC §6.1, and Decisions Q8: `defaults` too).
COPIED = ("name", "description", "tags", "tasks", "inputs", "secrets", "output", "defaults", "webhooks")


class ScheduledJob(_Model):
    id: str = Field(default_factory=new_id)
    name: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    state: ScheduleState = ScheduleState.ACTIVE
    cron: str
    created_at: datetime = Field(default_factory=utcnow)
    created_by: User = GUEST
    inputs: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    output: str | None = None
    defaults: dict[str, Any] | None = None
    webhooks: list[dict[str, Any]] | None = None
    permissions: list[dict[str, Any]] | None = None
    auto_delete: dict[str, Any] | None = None
    # The fire mark (see store/schedule_tables.py): the tick last fired, or the creation or resume time.
    last_fired: datetime = Field(default_factory=utcnow)

    def summary(self, next_fire: datetime | None) -> dict[str, Any]:
        """ScheduledJobSummary (SPEC §5.1) plus `nextFireAt` (beyond Tork: when the next tick is due, absent
        unless ACTIVE)."""
        body = self.model_dump(
            by_alias=True,
            exclude_none=True,
            include={"id", "created_by", "inputs", "state", "name", "description", "tags", "created_at", "cron"},
            mode="json",
        )
        if next_fire is not None and self.state is ScheduleState.ACTIVE:
            body["nextFireAt"] = next_fire.isoformat().replace("+00:00", "Z")
        return _drop_empty(body, keep=("createdAt",))

    def public(self, next_fire: datetime | None) -> dict[str, Any]:
        """ScheduledJob (SPEC §5.1), with `nextFireAt` as in the summary."""
        body = self.model_dump(by_alias=True, exclude_none=True, exclude={"last_fired"}, mode="json")
        body = _drop_empty(body, keep=("createdAt", "tasks"))
        if next_fire is not None and self.state is ScheduleState.ACTIVE:
            body["nextFireAt"] = next_fire.isoformat().replace("+00:00", "Z")
        return body

    def instance(self) -> Job:
        """A new PENDING job for one tick: the scheduled job's fields (defaults included), `schedule: {id}`."""
        job = Job(
            **{name: getattr(self, name) for name in COPIED},
            created_by=self.created_by,
            task_count=len(self.tasks),
            permissions=self.permissions,
            auto_delete=self.auto_delete,
            schedule={"id": self.id},
        )
        # Decisions Q8: unlike Tork's, an instance keeps the `job` namespace ({{ job.id }}, {{ job.name }}).
        job.context = job_context(job.id, job.name, job.inputs, job.secrets, {}, with_job=True)
        return job


def new_scheduled_job(spec: ScheduledJobInput, created_by: User | None, now: datetime) -> ScheduledJob:
    """An ACTIVE scheduled job from a validated document; its fire mark starts at its creation."""
    body = to_dict(spec)
    return ScheduledJob(
        name=spec.name,
        description=spec.description,
        tags=list(spec.tags or []),
        cron=spec.schedule.cron,
        created_at=now,
        created_by=created_by or GUEST,
        inputs=dict(spec.inputs or {}),
        secrets=dict(spec.secrets or {}),
        tasks=body["tasks"],
        output=spec.output,
        defaults=body.get("defaults"),
        webhooks=body.get("webhooks"),
        permissions=body.get("permissions"),
        auto_delete=body.get("autoDelete"),
        last_fired=now,
    )


def next_fire(scheduled: ScheduledJob, now: datetime) -> datetime | None:
    """When an ACTIVE scheduled job's next job is due (shown as `nextFireAt`); None otherwise."""
    if scheduled.state is not ScheduleState.ACTIVE:
        return None
    try:
        return upcoming(parse_cron(scheduled.cron), scheduled.last_fired, now)
    except TorkError:
        return None
