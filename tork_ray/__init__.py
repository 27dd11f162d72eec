"""tork_ray: Tork's job files and REST API, run on Ray with containers as tasks."""

__version__ = "0.1.0"

# The public surface. None of these imports Ray: a client machine needs only httpx and pydantic.
from tork_ray.client import Client, submit
from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.errors import BadRequest, Conflict, NotFound, TorkError, ValidationFailed, WaitTimedOut
from tork_ray.spec.models import JobInput, TaskInput

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
