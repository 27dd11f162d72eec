"""Rate limit per client IP (middleware.web.ratelimit.*): a token bucket of `rps` per second; excess is 429."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from tork_ray.api.middleware.respond import refuse

# Buckets idle this long are full again anyway: forget them, so a crowd of clients cannot grow the map for ever.
IDLE_SECONDS = 60.0
PRUNE_AT = 10_000


class RateLimit:
    def __init__(self, app: ASGIApp, rps: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.rate = float(max(rps, 1))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, last refill)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._take(self._client(scope)):
            await self.app(scope, receive, send)
            return
        await refuse(scope, receive, send, 429, "too many requests")

    @staticmethod
    def _client(scope: Scope) -> str:
        client = scope.get("client")
        return str(client[0]) if client else "-"

    def _take(self, ip: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.get(ip, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[ip] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > PRUNE_AT:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < IDLE_SECONDS}
        return allowed
