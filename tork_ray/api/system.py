"""GET /health: the store answers and the coordinator answers."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tork_ray import __version__
from tork_ray.api.backend import Backend, backend
from tork_ray.api.schemas import HealthOut

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
        b.store.ping()
        await asyncio.wait_for(b.coordinator.ping.remote(), HEALTH_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure of a dependency means DOWN, with the reason
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return JSONResponse({"status": "DOWN", "version": __version__, "error": reason}, status_code=503)
    return {"status": "UP", "version": __version__}
