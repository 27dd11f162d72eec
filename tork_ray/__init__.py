"""tork_ray: Tork's job files and REST API, run on Ray with containers as tasks.

From Python: `tork_ray.submit(job, wait=True)` runs a job and returns it, typed; `tork_ray.Client` (and its
asyncio twin `tork_ray.AsyncClient`) has a typed method for every route of the API."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public surface. None of these imports Ray: a client machine needs only httpx and pydantic. Loaded on first
# use (PEP 562): every Ray worker that runs a task imports this package, and the client, the job parser and the
# template engine it never uses cost each worker process about 28 MB and a second or more of its start.
_PUBLIC = {
    "AsyncClient": "tork_ray.aio",
    "Client": "tork_ray.client",
    "submit": "tork_ray.client",
    "JobState": "tork_ray.domain.states",
    "TaskState": "tork_ray.domain.states",
    "AlreadyExists": "tork_ray.errors",
    "BadRequest": "tork_ray.errors",
    "Conflict": "tork_ray.errors",
    "Forbidden": "tork_ray.errors",
    "JobFailed": "tork_ray.errors",
    "NotFound": "tork_ray.errors",
    "PayloadTooLarge": "tork_ray.errors",
    "TooManyRequests": "tork_ray.errors",
    "TorkError": "tork_ray.errors",
    "Unauthorized": "tork_ray.errors",
    "Unavailable": "tork_ray.errors",
    "ValidationFailed": "tork_ray.errors",
    "WaitTimedOut": "tork_ray.errors",
    "Health": "tork_ray.sdk.models",
    "Job": "tork_ray.sdk.models",
    "JobSummary": "tork_ray.sdk.models",
    "LogLine": "tork_ray.sdk.models",
    "LogPart": "tork_ray.sdk.models",
    "Metrics": "tork_ray.sdk.models",
    "Node": "tork_ray.sdk.models",
    "Page": "tork_ray.sdk.models",
    "Queue": "tork_ray.sdk.models",
    "Role": "tork_ray.sdk.models",
    "ScheduledJob": "tork_ray.sdk.models",
    "ScheduledJobSummary": "tork_ray.sdk.models",
    "Task": "tork_ray.sdk.models",
    "User": "tork_ray.sdk.models",
    "JobInput": "tork_ray.spec.models",
    "ScheduledJobInput": "tork_ray.spec.models",
    "TaskInput": "tork_ray.spec.models",
}

if TYPE_CHECKING:
    from tork_ray.aio import AsyncClient
    from tork_ray.client import Client, submit
    from tork_ray.domain.states import JobState, TaskState
    from tork_ray.errors import (
        AlreadyExists,
        BadRequest,
        Conflict,
        Forbidden,
        JobFailed,
        NotFound,
        PayloadTooLarge,
        TooManyRequests,
        TorkError,
        Unauthorized,
        Unavailable,
        ValidationFailed,
        WaitTimedOut,
    )
    from tork_ray.sdk.models import (
        Health,
        Job,
        JobSummary,
        LogLine,
        LogPart,
        Metrics,
        Node,
        Page,
        Queue,
        Role,
        ScheduledJob,
        ScheduledJobSummary,
        Task,
        User,
    )
    from tork_ray.spec.models import JobInput, ScheduledJobInput, TaskInput


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'tork_ray' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "Health",
    "Job",
    "JobFailed",
    "JobInput",
    "JobState",
    "JobSummary",
    "LogLine",
    "LogPart",
    "Metrics",
    "Node",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Queue",
    "Role",
    "ScheduledJob",
    "ScheduledJobInput",
    "ScheduledJobSummary",
    "Task",
    "TaskInput",
    "TaskState",
    "TooManyRequests",
    "TorkError",
    "Unauthorized",
    "Unavailable",
    "User",
    "ValidationFailed",
    "WaitTimedOut",
    "__version__",
    "submit",
]
