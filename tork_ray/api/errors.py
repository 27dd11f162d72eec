"""Errors to HTTP in one place: every TorkError becomes its status code and {"message": ...}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayError, RayTaskError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tork_ray.errors import TorkError
from tork_ray.store.outage import is_outage, reason, unavailable

log = logging.getLogger(__name__)


def unwrap(exc: BaseException) -> BaseException:
    """The TorkError an actor raised travels inside a RayTaskError: answer with the original."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


def store_down(exc: BaseException) -> JSONResponse:
    """503 naming the outage (the driver's first line: a refused or lost connection, a locked database)."""
    log.warning("the store is out of reach: %s", reason(exc))
    return JSONResponse({"message": unavailable(exc).message}, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TorkError)
    async def _tork(_request: Request, exc: TorkError) -> JSONResponse:
        return JSONResponse({"message": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RayError)
    async def _ray(_request: Request, exc: RayError) -> JSONResponse:
        cause = unwrap(exc)
        if isinstance(cause, TorkError):
            return JSONResponse({"message": cause.message}, status_code=cause.status_code)
        if is_outage(cause):  # the coordinator met the outage on a read of its own
            return store_down(cause)
        log.error("coordinator call failed: %s", exc)
        return JSONResponse({"message": "the coordinator is unavailable"}, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(DBAPIError)
    async def _store(_request: Request, exc: DBAPIError) -> JSONResponse:
        if is_outage(exc):
            return store_down(exc)
        log.error("store error: %s", type(exc).__name__, exc_info=exc)  # a bug: never echoed (it holds values)
        return JSONResponse({"message": "internal server error"}, status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):  # raised by a middleware (authentication reads users), outside the routes' handlers
            return store_down(exc)
        # Never echo an unexpected error: its text could hold anything, a secret included.
        log.exception("unexpected error: %s", type(exc).__name__)
        return JSONResponse({"message": "internal server error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _params(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"message": "; ".join(problems)}, status_code=400)
