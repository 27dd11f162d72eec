"""Response models of every route: what /openapi.json documents and what handlers' answers are checked against."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class _Out(BaseModel):
    # extra="allow": a field added to the engine before it is added here is still shown, never dropped.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ErrorOut(_Out):
    message: str = Field(description="What was wrong, naming the field or the thing")


class StatusOut(_Out):
    status: Literal["OK"] = "OK"


class HealthOut(_Out):
    status: Literal["UP", "DOWN"]
    version: str
    error: str | None = None


class UserOut(_Out):
    id: str
    name: str | None = None
    username: str
    created_at: datetime | None = None
    disabled: bool | None = None


class RoleOut(_Out):
    id: str
    slug: str
    name: str
    created_at: datetime | None = None
    users: list[str] | None = Field(default=None, description="Usernames of its members (GET /roles/{slug})")


class RoleIn(BaseModel):
    slug: str = Field(description="Unique: lowercase letters, digits, - and _ (at most 64)")
    name: str = Field(default="", description="Shown name; the slug when empty")


class UserIn(BaseModel):
    username: str = ""
    password: str = ""
    name: str = ""


class TaskOut(_Out):
    """A task instance (SPEC §2.1 stored task): its evaluated definition plus its own bookkeeping."""

    id: str
    job_id: str
    parent_id: str | None = None
    position: int
    name: str | None = None
    description: str | None = None
    state: str
    created_at: datetime
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None
    result: str | None = None
    node_id: str | None = None
    progress: float | None = None
    redelivered: int | None = None  # times run again after a coordinator restart (omitted when 0)
    queue: str | None = None
    priority: int | None = None
    var: str | None = None
    image: str | None = None
    run: str | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: dict[str, str] | None = None
    files: dict[str, str] | None = None
    workdir: str | None = None
    if_: str | None = Field(default=None, alias="if")
    timeout: str | None = None
    tags: list[str] | None = None
    gpus: str | None = None
    networks: list[str] | None = None
    retry: dict[str, Any] | None = Field(default=None, description="{limit, attempts} (+ backoff extension)")
    limits: dict[str, Any] | None = Field(default=None, description="{cpus, memory}")
    registry: dict[str, Any] | None = Field(default=None, description="{username, password} (password redacted)")
    mounts: list[dict[str, Any]] | None = None
    pre: list[dict[str, Any]] | None = None
    post: list[dict[str, Any]] | None = None
    sidecars: list[dict[str, Any]] | None = None
    parallel: dict[str, Any] | None = Field(default=None, description="{tasks, completions}")
    each: dict[str, Any] | None = Field(default=None, description="{list, var, task, concurrency, size, ...}")
    subjob: dict[str, Any] | None = Field(default=None, description="{id, name, tasks, ...}")


class JobSummaryOut(_Out):
    """JobSummary (SPEC §1.2): the answer of POST /jobs and the items of GET /jobs."""

    id: str
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    state: str
    parent_id: str | None = None
    created_at: datetime
    created_by: UserOut | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    position: int
    task_count: int | None = None
    inputs: dict[str, str] | None = None
    result: str | None = None
    error: str | None = None
    progress: float | None = None
    schedule: dict[str, Any] | None = None


class JobOut(JobSummaryOut):
    """The stored job (SPEC §1.2) with every task instance in `execution`."""

    tasks: list[dict[str, Any]] = Field(description="The task definitions as submitted")
    execution: list[TaskOut] = Field(description="Task instances: position asc, then creation")
    context: dict[str, Any] = Field(description="{job, inputs, secrets (redacted), tasks: var -> result}")
    secrets: dict[str, str] | None = None
    output: str | None = None
    defaults: dict[str, Any] | None = None
    webhooks: list[dict[str, Any]] | None = None
    permissions: list[dict[str, Any]] | None = None
    auto_delete: dict[str, Any] | None = None
    delete_at: datetime | None = None


class Page(_Out, Generic[T]):
    """Tork's page: `size` is the number of items returned, `totalPages` uses the requested size."""

    items: list[T]
    number: int
    size: int
    total_pages: int
    total_items: int


class TaskLogPartOut(_Out):
    id: str
    number: int
    task_id: str
    contents: str
    created_at: datetime


class QueueOut(_Out):
    name: str
    size: int = Field(description="Tasks waiting in the coordinator's backlog")
    subscribers: int = Field(description="Slots of this queue across the cluster (0: no node serves it)")
    unacked: int = Field(description="Tasks of this queue running now")


class NodeOut(_Out):
    id: str
    name: str
    hostname: str
    port: int | None = None
    status: Literal["UP", "DOWN", "OFFLINE"]
    queues: dict[str, int] = Field(description="Queue name -> slots on this node")
    task_count: int
    cpu_percent: float | None = Field(default=None, description="Whole-host CPU use, sampled by the heartbeat")
    started_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    version: str


class RunningOut(_Out):
    running: int


class NodesMetricsOut(_Out):
    online: int
    cpu_percent: float


class MetricsOut(_Out):
    jobs: RunningOut
    tasks: RunningOut
    nodes: NodesMetricsOut


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad request (the message says what)"},
    404: {"model": ErrorOut, "description": "Not found"},
}
