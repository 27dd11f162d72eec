"""Off the event loop: SQL, parsing, redaction and rendering run on a bounded pool of threads.

One request's heavy work (a 500 KB document to parse, a slow search, a big job to redact and render) must never
hold up the event loop, and with it every other request (`GET /health` included). Threads are enough: SQLite,
PostgreSQL and the C parts of parsing let go of the GIL, and Python code is switched out every few ms."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi import Response
from pydantic import TypeAdapter

P = ParamSpec("P")
T = TypeVar("T")

# Below the store's connection pool (5 + 10 overflow), so a burst of reads waits here, not for a connection.
API_THREADS = 8
# A submitted body up to this size is parsed on the loop: the thread hop would cost more than the work. Measured
# (parse, validate, to_dict, secret harvest of a YAML job): 0.24 ms for 107 bytes, 1.2 ms for 900 bytes; parsing
# is linear in its input, so 512 bytes stays well under a millisecond.
INLINE_PARSE_BYTES = 512


class Offload:
    """Runs a blocking function on the API's own thread pool, at most `threads` at a time."""

    def __init__(self, threads: int = API_THREADS) -> None:
        # Made outside any event loop (create_app), anyio binds the limiter to the loop on first use.
        self._limiter = anyio.CapacityLimiter(threads)

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    async def unless_small(self, small: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """On the loop when the input is known to be small (see INLINE_PARSE_BYTES), in a thread otherwise."""
        return fn(*args, **kwargs) if small else await self(fn, *args, **kwargs)


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def model_response(model: Any, body: Any, *, exclude_unset: bool = False, exclude_none: bool = False) -> Response:
    """What FastAPI does with a route's `response_model` (validate, then dump by alias), done by the caller, so
    that a big answer is checked and rendered in a thread rather than on the loop."""
    adapter = _adapter(model)
    content = adapter.dump_json(
        adapter.validate_python(body), by_alias=True, exclude_unset=exclude_unset, exclude_none=exclude_none
    )
    return Response(content, media_type="application/json")
