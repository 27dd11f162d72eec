"""Authentication of every request but `GET /health` (kept open for probes), when basic or key auth is on.

Under /ui (the web UI) the credentials may also come from the UI's sign-in cookie, and a request without any
is sent to the sign-in page (tork_ray/ui/session.py)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tork_ray.api.access import SCOPE_KEY
from tork_ray.api.authn import Authenticator, Refusal
from tork_ray.ui import session

OPEN = frozenset({("GET", "/health"), ("HEAD", "/health"), ("GET", "/")})  # `/` only redirects to /ui/


class Authenticate:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or (scope["method"], path) in OPEN or session.open_to_all(path):
            await self.app(scope, receive, send)
            return
        ui = session.in_ui(path)
        if ui:
            authorization, answer = session.ui_authorization(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
        else:
            authorization = Headers(scope=scope).get("authorization")
        client = scope.get("client")
        result = await self.authenticator.authenticate(authorization, str(client[0]) if client else "-")
        if isinstance(result, Refusal):
            if ui and result.status == 401 and scope["method"] in session.SAFE_METHODS:
                await session.to_login(scope)(scope, receive, send)
                return
            response = JSONResponse({"message": result.message}, status_code=result.status, headers=result.headers)
            await response(scope, receive, send)
            return
        # The routes read it with access.current_caller.
        await self.app({**scope, SCOPE_KEY: result}, receive, send)
