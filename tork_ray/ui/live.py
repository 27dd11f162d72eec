"""Live fragments as server-sent events: re-render what a page shows, send only what changed.

A page opens one stream (htmx's SSE extension swaps each named event into its place). The stream renders its
fragments every LIVE_SECONDS through the API's handlers (so with the caller's rights) and sends a fragment only
when its HTML changed: no polling loop in the page, and one cheap read per open page per tick on the server,
from any API process (uvicorn or a Serve replica), as the log streams do (tork_ray/api/streams.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse

from tork_ray.api.streams import KEEPALIVE_SECONDS, SSE_HEADERS, sse
from tork_ray.errors import TorkError

LIVE_SECONDS = 1.0
log = logging.getLogger(__name__)

Render = Callable[[], Awaitable[dict[str, str]]]


async def _changes(request: Request, render: Render, every: float) -> AsyncIterator[str]:
    sent: dict[str, str] = {}
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        try:
            fragments = await render()
        except TorkError:  # gone, or no longer visible to the caller: the stream ends (the page keeps its view)
            return
        except Exception as exc:  # a passing outage: the page keeps what it shows, the next tick tries again
            log.warning("live fragment failed: %s", type(exc).__name__)
            fragments = {}
        for name, text in fragments.items():
            if sent.get(name) != text:
                sent[name] = text
                quiet_since = time.monotonic()
                yield sse(text, name)
        if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await asyncio.sleep(every)


def live(request: Request, render: Render, every: float = LIVE_SECONDS) -> StreamingResponse:
    return StreamingResponse(_changes(request, render, every), media_type="text/event-stream", headers=SSE_HEADERS)
