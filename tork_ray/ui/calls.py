"""The UI's reads and writes: the API's route handlers, called in-process with the request's caller.

Calling the handlers (not the store) is what keeps the UI inside the API's rules: the same visibility checks,
the same 404 for a job the caller may not see, the same redaction of secrets, the same coordinator calls."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from tork_ray.api.access import Caller, current_caller
from tork_ray.api.backend import Backend
from tork_ray.api.errors import unwrap
from tork_ray.errors import TorkError


def backend_of(request: Request) -> Backend:
    b: Backend = request.app.state.backend
    return b


async def caller_of(request: Request) -> Caller | None:
    return await current_caller(request)


async def call(handler: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """The handler's answer as plain data (a handler returns either data or a rendered JSON Response)."""
    result = await handler(*args, **kwargs)
    if isinstance(result, Response):
        return json.loads(bytes(result.body)) if result.body else None
    return result


async def attempt(handler: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> tuple[Any, TorkError | None]:
    """As `call`, but a refusal (404, 400, 403, ...) is returned as the error instead of raised; a refusal from
    the coordinator arrives wrapped in Ray's error and is unwrapped, as the API's error handler does."""
    try:
        return await call(handler, *args, **kwargs), None
    except TorkError as exc:
        return None, exc
    except Exception as exc:
        cause = unwrap(exc)
        if isinstance(cause, TorkError):
            return None, cause
        raise
