"""Authentication of every request but `GET /health` (kept open for probes), when basic or key auth is on."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tork_ray.api.access import SCOPE_KEY
from tork_ray.api.authn import Authenticator, Refusal

OPEN = frozenset({("GET", "/health"), ("HEAD", "/health")})


class Authenticate:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in OPEN:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        result = await self.authenticator.authenticate(
            Headers(scope=scope).get("authorization"), str(client[0]) if client else "-"
        )
        if isinstance(result, Refusal):
            response = JSONResponse({"message": result.message}, status_code=result.status, headers=result.headers)
            await response(scope, receive, send)
            return
        # The routes read it with access.current_caller.
        await self.app({**scope, SCOPE_KEY: result}, receive, send)
