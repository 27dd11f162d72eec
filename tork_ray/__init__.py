"""tork_ray: Tork's job files and REST API, run on Ray with containers as tasks."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public surface. None of these imports Ray: a client machine needs only httpx and pydantic. Loaded on first
# use (PEP 562): every Ray worker that runs a task imports this package, and the client, the job parser and the
# template engine it never uses cost each worker process about 28 MB and a second or more of its start.
_PUBLIC = {
    "Client": "tork_ray.client",
    "submit": "tork_ray.client",
    "Job": "tork_ray.domain.models",
    "Task": "tork_ray.domain.models",
    "JobState": "tork_ray.domain.states",
    "TaskState": "tork_ray.domain.states",
    "BadRequest": "tork_ray.errors",
    "Conflict": "tork_ray.errors",
    "NotFound": "tork_ray.errors",
    "TorkError": "tork_ray.errors",
    "ValidationFailed": "tork_ray.errors",
    "WaitTimedOut": "tork_ray.errors",
    "JobInput": "tork_ray.spec.models",
    "TaskInput": "tork_ray.spec.models",
}

if TYPE_CHECKING:
    from tork_ray.client import Client, submit
    from tork_ray.domain.models import Job, Task
    from tork_ray.domain.states import JobState, TaskState
    from tork_ray.errors import BadRequest, Conflict, NotFound, TorkError, ValidationFailed, WaitTimedOut
    from tork_ray.spec.models import JobInput, TaskInput


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
    "BadRequest",
    "Client",
    "Conflict",
    "Job",
    "JobInput",
    "JobState",
    "NotFound",
    "Task",
    "TaskInput",
    "TaskState",
    "TorkError",
    "ValidationFailed",
    "WaitTimedOut",
    "__version__",
    "submit",
]
