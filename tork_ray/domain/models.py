"""The stored Job and Task as the coordinator and the API see them (SPEC §1.2, §2.1), free of SQL and Ray."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tork_ray.domain.states import JobState, TaskState


def new_id() -> str:
    """A 32-hex id, as Tork's."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


# Keys of Task.spec that start with "_" are the coordinator's own bookkeeping, never shown.
ITEM_KEY = "_item"
# The composites whose children are counted home (Task.completions).
COUNTED = ("parallel", "each")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, validate_assignment=False)


class User(_Model):
    id: str
    name: str
    username: str
    created_at: datetime | None = None
    disabled: bool = False


GUEST = User(id="guest", name="Guest", username="guest", disabled=True)


class Task(_Model):
    """One task instance: a top-level task, a composite's child, or a retry copy.

    `spec` holds the evaluated task definition in Tork's camelCase form (image, run, env, retry, each, ...);
    the fields beside it are the instance's own bookkeeping. Serialising merges the two, as Tork shows them.
    """

    id: str = Field(default_factory=new_id)
    job_id: str
    parent_id: str | None = None
    position: int
    name: str = ""
    state: TaskState = TaskState.PENDING
    queue: str = "default"
    priority: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None
    result: str | None = None
    node_id: str | None = None
    progress: float = 0.0
    # Times the task was run again because the coordinator restarted while it ran (Tork's `redelivered`).
    redelivered: int = 0
    # A parallel's or each's children that came home: shown as `parallel.completions` / `each.completions`, as
    # Tork does, but kept beside the spec so that counting one more never rewrites the spec (every child's
    # definition, for a parallel).
    completions: int = 0
    spec: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_composite(self) -> bool:
        return any(key in self.spec for key in ("parallel", "each", "subjob"))

    def public(self) -> dict[str, Any]:
        """The task as Tork's API shows it (camelCase, empty fields omitted)."""
        body = {key: value for key, value in self.spec.items() if not key.startswith("_")}
        for kind in COUNTED:  # the count is shown once the composite started (its block then has the key)
            block = body.get(kind)
            if isinstance(block, dict) and "completions" in block:
                shown = {key: value for key, value in block.items() if not key.startswith("_")}  # the engine's own
                body[kind] = {**shown, "completions": self.completions}
        body.update(self.model_dump(by_alias=True, exclude_none=True, exclude={"spec", "completions"}, mode="json"))
        for empty in ("progress", "redelivered"):
            if not body.get(empty):
                body.pop(empty, None)
        return body


class Job(_Model):
    id: str = Field(default_factory=new_id)
    name: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    state: JobState = JobState.PENDING
    parent_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    created_by: User = GUEST
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    position: int = 0
    task_count: int = 0
    inputs: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    output: str | None = None
    result: str | None = None
    error: str | None = None
    defaults: dict[str, Any] | None = None
    webhooks: list[dict[str, Any]] | None = None
    permissions: list[dict[str, Any]] | None = None
    auto_delete: dict[str, Any] | None = None
    delete_at: datetime | None = None
    progress: float = 0.0
    schedule: dict[str, Any] | None = None
    # Values of a parent's secrets rendered into this sub-job (its name, webhook URLs and headers are rendered
    # in the parent's context): hidden wherever the job is shown, like its own secrets; never shown itself.
    hidden: list[str] = Field(default_factory=list)

    SUMMARY_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "id",
            "created_by",
            "parent_id",
            "inputs",
            "name",
            "description",
            "tags",
            "state",
            "created_at",
            "started_at",
            "completed_at",
            "failed_at",
            "position",
            "task_count",
            "result",
            "error",
            "progress",
            "schedule",
        }
    )

    def summary(self) -> dict[str, Any]:
        """JobSummary (SPEC §1.2): what POST /jobs, GET /jobs and webhooks show."""
        body = self.model_dump(by_alias=True, exclude_none=True, include=set(self.SUMMARY_FIELDS), mode="json")
        return _drop_empty(body, keep=("position", "createdAt"))

    def public(self, execution: list[Task]) -> dict[str, Any]:
        """The full job (SPEC §1.2) with its task instances as `execution`."""
        body = _drop_empty(
            self.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"hidden"}),
            keep=("position", "createdAt", "tasks", "context"),
        )
        body["execution"] = [task.public() for task in execution]
        return body


def _drop_empty(body: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in keep or v not in ("", [], {}, 0, 0.0)}
