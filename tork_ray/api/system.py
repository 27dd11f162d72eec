"""Routes of the engine itself: health and queues."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tork_ray import __version__
from tork_ray.api.backend import Backend, backend

router = APIRouter(tags=["system"])
Deps = Annotated[Backend, Depends(backend)]
HEALTH_TIMEOUT_SECONDS = 5.0


@router.get("/health", summary="Datastore and coordinator check")
async def health(b: Deps) -> JSONResponse:
    try:
        b.store.ping()
        await asyncio.wait_for(b.coordinator.ping.remote(), HEALTH_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure of a dependency means DOWN, with the reason
        return JSONResponse({"status": "DOWN", "version": __version__, "error": str(exc)}, status_code=503)
    return JSONResponse({"status": "UP", "version": __version__})


@router.get("/queues", summary="Task queues: backlog, slots across the cluster, running tasks")
async def queues(b: Deps) -> list[dict[str, Any]]:
    return [asdict(info) for info in await b.coordinator.queues.remote()]
