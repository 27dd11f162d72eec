"""SQLModel tables: the only place the schema is written down (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from tork_ray.store.crypto import SealedJSON, SealedText


def _ts(index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), index=index))


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=256)
    description: str | None = Field(default=None, sa_column=Column(Text))
    state: str = Field(max_length=16, index=True)
    parent_id: str | None = Field(default=None, max_length=32, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    failed_at: datetime | None = _ts()
    delete_at: datetime | None = _ts(index=True)
    position: int = 0
    task_count: int = 0
    progress: float = 0.0
    # Sealed with datastore.encryption.key (crypto.py): an output or an error can echo a secret.
    result: str | None = Field(default=None, sa_column=Column(SealedText("jobs.result")))
    error: str | None = Field(default=None, sa_column=Column(SealedText("jobs.error")))
    # Everything else of the job document (tasks, inputs, secrets, context, defaults, ...) as one JSON value:
    # it is read and written whole, never queried by part, so it is sealed whole.
    doc: dict[str, Any] = Field(default_factory=dict, sa_column=Column(SealedJSON("jobs.doc"), nullable=False))


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_job_position", "job_id", "position"),
        # The next CREATED child of an each, in list order, found without a scan: children past the coordinator's
        # window are stored, not held, and released one by one from here (coordinator/composite.py).
        Index("ix_tasks_parent_state_item", "parent_id", "state", "item_index"),
    )

    id: str = Field(primary_key=True, max_length=32)
    job_id: str = Field(max_length=32)
    parent_id: str | None = Field(default=None, max_length=32, index=True)
    position: int
    # Rendered from templates (SPEC §3.4), so they can carry a secret: sealed like the spec (never queried).
    name: str = Field(default="", sa_column=Column(SealedText("tasks.name"), nullable=False))
    state: str = Field(max_length=16, index=True)
    queue: str = Field(default="default", sa_column=Column(SealedText("tasks.queue"), nullable=False))
    priority: int = 0
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    scheduled_at: datetime | None = _ts()
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    failed_at: datetime | None = _ts()
    error: str | None = Field(default=None, sa_column=Column(SealedText("tasks.error")))
    result: str | None = Field(default=None, sa_column=Column(SealedText("tasks.result")))
    node_id: str | None = Field(default=None, max_length=64)
    progress: float = 0.0
    redelivered: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # Children of a parallel or each that came home (Tork's parallel.completions / each.completions). A column of
    # its own: bumped once per child, it must not rewrite (and seal again) the spec, which holds every child.
    completions: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # An each child's index in its list (the spec's item, which is sealed, has it too); None for other tasks.
    item_index: int | None = Field(default=None, sa_column=Column(Integer))
    # The evaluated definition: rendered env, registry credentials, files, the each item.
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(SealedJSON("tasks.spec"), nullable=False))


class TaskLogPartRow(SQLModel, table=True):
    __tablename__ = "tasks_log_parts"
    __table_args__ = (Index("ix_log_parts_task_number", "task_id", "number"),)

    id: str = Field(primary_key=True, max_length=32)
    task_id: str = Field(max_length=32)
    number: int
    contents: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


class JobTagRow(SQLModel, table=True):
    """One row per tag of a job, for the exact `tag:`/`tags:` search filters (any of the tags matches)."""

    __tablename__ = "jobs_tags"

    # Cascade: whoever deletes a job (the API never does; retention does) takes its tags along.
    job_id: str = Field(
        sa_column=Column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    tag: str = Field(sa_column=Column(String(256), primary_key=True, nullable=False))
    # The job's, copied: a tag filter pages newest first from the (tag, created_at) index alone.
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))

    __table_args__ = (Index("ix_jobs_tags_tag_created", "tag", "created_at", "job_id"),)


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="", max_length=256)
    username: str = Field(max_length=256, unique=True)
    # A salted slow hash (api/passwords.py); "" for users that cannot log in, like the built-in guest.
    password_hash: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    disabled: bool = False


class RequestRow(SQLModel, table=True):
    """A coordinator call already applied, by its request id: a retry of the call finds it and changes nothing.
    Written in the same transaction as the change it made; deleted by the retention sweep after a day."""

    __tablename__ = "requests"

    id: str = Field(primary_key=True, max_length=320)  # "<scope>:<key>": the API's uuid, or a client's key
    kind: str = Field(max_length=16)  # submit | cancel | restart
    job_id: str = Field(max_length=32)
    # sha256 of the request body for a client's Idempotency-Key: the same key with another body is refused.
    fingerprint: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
