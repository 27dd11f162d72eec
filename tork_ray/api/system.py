"""GET /health: the store answers, and the coordinator answers and is ready (has recovered its jobs)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tork_ray import __version__
from tork_ray.api.backend import Backend, backend
from tork_ray.api.schemas import HealthOut
from tork_ray.store.outage import is_outage, unavailable

router = APIRouter(tags=["system"])
Deps = Annotated[Backend, Depends(backend)]
HEALTH_TIMEOUT_SECONDS = 5.0


@router.get(
    "/health",
    summary="Datastore and coordinator check",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses={503: {"model": HealthOut, "description": "A dependency is down; `error` says which and why"}},
)
async def health(b: Deps) -> Any:
    try:
        # The ping is SQL: off the loop, on anyio's default pool rather than the API's own (busy with heavy
        # requests, that one would make /health wait behind them).
        await asyncio.wait_for(anyio.to_thread.run_sync(b.store.ping), HEALTH_TIMEOUT_SECONDS)
        state = await asyncio.wait_for(b.coordinator.readiness.remote(), HEALTH_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure of a dependency means DOWN, with the reason
        if is_outage(exc):
            return _down(unavailable(exc).message)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return _down(reason)
    if not state["ready"]:  # the coordinator answers but has not recovered its jobs: it cannot serve yet
        return _down(f"coordinator is not ready: {state['reason']}")
    return {"status": "UP", "version": __version__}


def _down(reason: str) -> JSONResponse:
    return JSONResponse({"status": "DOWN", "version": __version__, "error": reason}, status_code=503)
