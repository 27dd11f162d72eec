"""GET /nodes: the Ray nodes that serve queues, with their heartbeat, CPU and running tasks."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tork_ray.api.backend import Backend, backend
from tork_ray.api.schemas import NodeOut

router = APIRouter(tags=["nodes"])
Deps = Annotated[Backend, Depends(backend)]


@router.get(
    "/nodes",
    summary="Nodes serving queues, sorted by name (OFFLINE ones for 5 minutes after they leave)",
    response_model=list[NodeOut],
    response_model_exclude_none=True,
)
async def list_nodes(b: Deps) -> Any:
    return [asdict(node) for node in await b.coordinator.nodes.remote()]
