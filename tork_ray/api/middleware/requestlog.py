"""Request log (middleware.web.logger.*): method, path, status and time per request, minus the skip list."""

from __future__ import annotations

import fnmatch
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tork_ray.api.requests")


class RequestLog:
    def __init__(self, app: ASGIApp, level: str = "DEBUG", skip: tuple[str, ...] = ("GET /health",)) -> None:
        self.app = app
        self.level = logging.getLevelNamesMapping().get(level.upper(), logging.DEBUG)
        self.skip = tuple(pattern.upper() for pattern in skip)

    def skipped(self, method: str, path: str) -> bool:
        request = f"{method} {path}".upper()
        return any(fnmatch.fnmatchcase(request, pattern) for pattern in self.skip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(self.level) or self.skipped(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            client = scope.get("client")
            log.log(
                self.level,
                "%s %s %d %.1fms %s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                client[0] if client else "-",
            )
