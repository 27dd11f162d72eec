"""Typed answers of the REST API, for Python callers (tork_ray.Client, tork_ray.AsyncClient, tork_ray.submit).

Every model keeps fields it does not know (`extra="allow"`, reachable as attributes and in `model_extra`) and
needs little: an answer of a newer engine, or of Tork itself, still parses. Field names are Python's
(`created_at`); the JSON's camelCase names (`createdAt`) are their aliases. States are plain strings, equal to
the members of tork_ray.JobState / tork_ray.TaskState (both StrEnums), so an unknown state never breaks a
caller."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")

# The states in which a job (task) will not change any more.
JOB_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
TASK_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "SKIPPED", "STOPPED"})


class ApiModel(BaseModel):
    """Base of every answer: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_json(self) -> dict[str, Any]:
        """The answer as the API sent it (camelCase keys, unset fields left out): for printing or storing."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class User(ApiModel):
    id: str = ""
    username: str = ""
    name: str | None = None
    created_at: datetime | None = None
    disabled: bool | None = None


class Role(ApiModel):
    id: str = ""
    slug: str
    name: str = ""
    created_at: datetime | None = None
    users: list[str] | None = Field(default=None, description="Usernames of its members (Client.role() only)")


class Health(ApiModel):
    status: str = Field(description="UP or DOWN")
    version: str = ""
    error: str | None = Field(default=None, description="Why it is DOWN")

    @property
    def up(self) -> bool:
        return self.status == "UP"


class Task(ApiModel):
    """One task instance of a job: its evaluated definition (image, run, env, ...) and its bookkeeping."""

    id: str
    job_id: str | None = None
    parent_id: str | None = None
    position: int = 0
    name: str | None = None
    description: str | None = None
    state: str = ""
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None
    result: str | None = None
    node_id: str | None = None
    progress: float | None = None
    queue: str | None = None
    var: str | None = None
    image: str | None = None
    run: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in TASK_ENDED


class JobSummary(ApiModel):
    """What POST /jobs answers and GET /jobs lists (Tork's JobSummary)."""

    id: str
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    state: str = ""
    parent_id: str | None = None
    created_at: datetime | None = None
    created_by: User | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    position: int = 0
    task_count: int | None = None
    inputs: dict[str, str] | None = None
    result: str | None = None
    error: str | None = None
    progress: float | None = None
    schedule: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        """COMPLETED, FAILED or CANCELLED: the job will not change any more."""
        return self.state in JOB_ENDED


class Job(JobSummary):
    """A job with every task instance in `execution` (GET /jobs/{id}); secrets come back redacted."""

    tasks: list[dict[str, Any]] = Field(default_factory=list, description="The task definitions as submitted")
    execution: list[Task] = Field(default_factory=list, description="Task instances, position then creation")
    context: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] | None = None
    output: str | None = None
    defaults: dict[str, Any] | None = None
    webhooks: list[dict[str, Any]] | None = None
    permissions: list[dict[str, Any]] | None = None
    auto_delete: dict[str, Any] | None = None
    delete_at: datetime | None = None


class ScheduledJobSummary(ApiModel):
    id: str
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    state: str = Field(default="", description="ACTIVE or PAUSED")
    cron: str = ""
    created_at: datetime | None = None
    created_by: User | None = None
    inputs: dict[str, str] | None = None
    next_fire_at: datetime | None = None


class ScheduledJob(ScheduledJobSummary):
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    secrets: dict[str, str] | None = None
    output: str | None = None
    defaults: dict[str, Any] | None = None
    webhooks: list[dict[str, Any]] | None = None
    permissions: list[dict[str, Any]] | None = None
    auto_delete: dict[str, Any] | None = None


class Page(ApiModel, Generic[T]):
    """One page of a list: `size` is the number of items on it, `total_pages` counts pages of the asked size."""

    items: list[T] = Field(default_factory=list)
    number: int = 1
    size: int = 0
    total_pages: int = 0
    total_items: int = 0


class LogPart(ApiModel):
    """A stored piece of a task's log (about a second of output)."""

    id: str = ""
    number: int = 0
    task_id: str = ""
    contents: str = ""
    created_at: datetime | None = None


class LogLine(NamedTuple):
    """One line of a job's live log."""

    task_id: str
    line: str


class Queue(ApiModel):
    name: str
    size: int = Field(default=0, description="Tasks waiting in the backlog")
    subscribers: int = Field(default=0, description="Slots of this queue across the cluster")
    unacked: int = Field(default=0, description="Tasks of this queue running now")


class Node(ApiModel):
    id: str
    name: str = ""
    hostname: str = ""
    port: int | None = None
    status: str = Field(default="", description="UP, DOWN or OFFLINE")
    queues: dict[str, int] = Field(default_factory=dict, description="Queue name -> slots on this node")
    task_count: int = 0
    cpu_percent: float | None = None
    started_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    version: str = ""


class Running(ApiModel):
    running: int = 0


class NodeMetrics(ApiModel):
    online: int = 0
    cpu_percent: float = 0.0


class Metrics(ApiModel):
    jobs: Running = Field(default_factory=Running)
    tasks: Running = Field(default_factory=Running)
    nodes: NodeMetrics = Field(default_factory=NodeMetrics)
