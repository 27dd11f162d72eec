"""Body limit for every route (middleware.web.bodylimit, default 500K): 413 before or while reading."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tork_ray.api.middleware.respond import refuse
from tork_ray.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, limit_text: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request body is larger than the limit of {limit_text}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await refuse(scope, receive, send, 413, self.message)
            return
        received = 0

        async def limited() -> Message:
            # A chunked body has no length to check up front: count it as the route reads it. The error
            # surfaces where the route awaits the body, and the app's error handler answers 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self.message)
            return message

        await self.app(scope, limited, send)
