"""The last word on an unexpected error: 500 {"message"}, answered here so the connection stays usable."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tork_ray.api.errors import store_down
from tork_ray.store.outage import is_outage

log = logging.getLogger("tork_ray.api.errors")
INTERNAL = {"message": "internal server error"}


class Unexpected:
    """Starlette answers an unexpected exception from its outermost layer and then raises it again, so that
    the server logs it; uvicorn then closes the connection, and a client's next request on that kept-alive
    connection fails with a reset. Caught here, innermost, the error is logged once and the connection lives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:  # half an answer has gone out: nothing better to do than let the server cut it
                raise
            if is_outage(exc):
                await store_down(exc)(scope, receive, send)
                return
            # Never echo the error: its text could hold anything, a secret included.
            log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
            await JSONResponse(INTERNAL, status_code=500)(scope, receive, send)
