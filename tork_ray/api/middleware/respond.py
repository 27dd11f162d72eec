"""A JSON refusal sent straight from an ASGI middleware, in the API's error shape."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    await JSONResponse({"message": message}, status_code=status)(scope, receive, send)
