"""tork_ray: Tork's job files and REST API, run on Ray with containers as tasks.

From Python: `tork_ray.submit(job, wait=True)` runs a job and returns it, typed; `tork_ray.Client` (and its
asyncio twin `tork_ray.AsyncClient`) has a typed method for every route of the API."""

__version__ = "0.1.0"

# The public surface. None of these imports Ray: a client machine needs only httpx and pydantic.
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
