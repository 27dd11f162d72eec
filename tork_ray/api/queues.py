"""Routes of /queues: each task queue's backlog, slots and running tasks; purge a backlog (SPEC §5.1)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from tork_ray.api.access import CallerDep, require_admin
from tork_ray.api.backend import Backend, backend
from tork_ray.api.offload import model_response
from tork_ray.api.schemas import ERRORS, QueueOut

router = APIRouter(tags=["queues"])
Deps = Annotated[Backend, Depends(backend)]


@router.get(
    "/queues",
    summary="Every task queue: backlog (size), slots (subscribers), running (unacked)",
    response_model=list[QueueOut],
)
async def list_queues(b: Deps) -> Any:
    # One entry per queue name any job has used: the list can be long, so it is checked and rendered off the loop.
    queues = await b.coordinator.queues.remote()
    return await b.offload(lambda: model_response(list[QueueOut], [asdict(info) for info in queues]))


@router.get("/queues/{name}", summary="One task queue", response_model=QueueOut, responses={404: ERRORS[404]})
async def get_queue(name: str, b: Deps) -> Any:
    return asdict(await b.coordinator.queue.remote(name))


@router.delete(
    "/queues/{name}",
    summary="Empty a task queue's backlog: each removed task fails (its job's retry rules decide); admin only "
    "with auth on",
    status_code=200,
    response_class=Response,
    responses={200: {"description": "Emptied (no body)"}, **ERRORS},
)
async def purge_queue(name: str, b: Deps, caller: CallerDep) -> Response:
    require_admin(caller)  # with auth on: purging fails other users' tasks, jobs they may not even see
    await b.coordinator.purge_queue.remote(name)
    return Response(status_code=200)
