"""Response models and the request body of /scheduled-jobs, for the routes and /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tork_ray.api.schemas import UserOut, _Out

SCHEDULED_JOB_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A Tork job document (no `wait`) with `schedule: {cron}`; unknown keys are rejected.",
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/ScheduledJobInput"}}
            for media in ("application/json", "text/yaml")
        },
    }
}


class ScheduledJobSummaryOut(_Out):
    """ScheduledJobSummary (SPEC §5.1), plus `nextFireAt`."""

    id: str
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    state: str = Field(description="ACTIVE or PAUSED (DELETING while a delete is under way)")
    cron: str
    created_at: datetime
    created_by: UserOut | None = None
    inputs: dict[str, str] | None = None
    next_fire_at: datetime | None = Field(default=None, description="When the next job is due (ACTIVE only)")


class ScheduledJobOut(ScheduledJobSummaryOut):
    """ScheduledJob (SPEC §5.1), redacted."""

    tasks: list[dict[str, Any]] = Field(description="The task definitions as submitted")
    secrets: dict[str, str] | None = None
    output: str | None = None
    defaults: dict[str, Any] | None = None
    webhooks: list[dict[str, Any]] | None = None
    permissions: list[dict[str, Any]] | None = None
    auto_delete: dict[str, Any] | None = None
