"""The one error root of tork_ray and its families; api/errors.py maps them to HTTP in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK's model of an API answer; no import at run time (no cycle)
    from tork_ray.sdk.models import Job


class TorkError(Exception):
    """Base of every error tork_ray raises on purpose. `message` is safe to show to a client."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(TorkError):
    """The request itself is wrong (bad content type, malformed body, bad parameter)."""

    status_code = 400


class ValidationFailed(BadRequest):
    """A submitted document broke one or more rules; `message` names each field path and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class NotFound(TorkError):
    status_code = 404


class Conflict(TorkError):
    """The thing exists but is in a state that forbids the operation (e.g. cancel a finished job)."""

    status_code = 400


class Unauthorized(TorkError):
    """No credentials, or wrong ones (the API answers 401; raised by the client)."""

    status_code = 401


class Forbidden(TorkError):
    """The caller is known but may not do this (e.g. manage users without the admin role)."""

    status_code = 403


class AlreadyExists(TorkError):
    """The thing to create exists already (a role's slug)."""

    status_code = 409


class PayloadTooLarge(TorkError):
    status_code = 413


class WaitTimedOut(TorkError):
    status_code = 408


class ExpressionError(TorkError):
    """A template failed to compile or evaluate (unknown name, type error, sandbox violation)."""

    status_code = 400


class RuntimeFailure(TorkError):
    """A task's container or process could not be run as asked (bad image, unsupported field, ...)."""


class Unavailable(TorkError):
    status_code = 503


class TooManyRequests(TorkError):
    """The API's rate limit, or too many failed logins (429); `retry_after` is the server's Retry-After, in s."""

    status_code = 429

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobFailed(TorkError):
    """A job waited on ended FAILED or CANCELLED; `job` is the finished job (its `error`, its tasks)."""

    status_code = 500

    def __init__(self, job: Job, message: str) -> None:
        super().__init__(message)
        self.job = job
