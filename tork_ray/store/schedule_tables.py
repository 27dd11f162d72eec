"""Tables of scheduled jobs (SPEC §6.1): the schedule with its fire mark, and which jobs each one spawned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, String, Text
from sqlmodel import Field, SQLModel

from tork_ray.store.crypto import SealedJSON


class ScheduledJobRow(SQLModel, table=True):
    __tablename__ = "scheduled_jobs"

    id: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16, index=True)  # ACTIVE | PAUSED | DELETING (a delete under way)
    cron: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    # The fire mark, epoch milliseconds: the tick last fired (creation or resume time before the first one).
    # Moved only by a conditional UPDATE in the transaction that inserts the tick's job, so a tick makes one
    # job however many coordinators try (see store/schedules.py: fire). An integer: equality is exact on
    # every database, where SQLite's text timestamps are not.
    last_fired: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Users and roles allowed to see the scheduled job and its instances (copied to each instance). Plain JSON:
    # not secret, and readable by an access check without opening the sealed document.
    permissions: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Everything else (name, description, tags, tasks, inputs, secrets, output, defaults, webhooks, autoDelete,
    # createdBy) as one JSON value, sealed whole with datastore.encryption.key like jobs.doc.
    doc: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(SealedJSON("scheduled_jobs.doc"), nullable=False)
    )


class ScheduledInstanceRow(SQLModel, table=True):
    """One row per job a scheduled job spawned: what DELETE /scheduled-jobs/{id} deletes along with it."""

    __tablename__ = "scheduled_jobs_instances"

    # Cascade: a job deleted by other means (autoDelete, retention) takes its row along.
    job_id: str = Field(
        sa_column=Column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    scheduled_job_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))


class ScheduledJobPermRow(SQLModel, table=True):
    """One row per entry of a scheduled job's `permissions`, for an access check in SQL (a list filtered by who
    asks, with its count right): `kind` is "user" or "role", `name` the value as stored."""

    __tablename__ = "scheduled_jobs_perms"

    scheduled_job_id: str = Field(
        sa_column=Column(
            String(32), ForeignKey("scheduled_jobs.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    kind: str = Field(sa_column=Column(String(8), primary_key=True, nullable=False))
    name: str = Field(sa_column=Column(String(256), primary_key=True, nullable=False, index=True))
