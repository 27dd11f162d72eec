"""GET /metrics (Tork's JSON) and GET /metrics/prometheus (text format, also served to /metrics on request)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from tork_ray.api import prometheus
from tork_ray.api.backend import Backend, backend
from tork_ray.api.schemas import MetricsOut
from tork_ray.coordinator.nodes import MetricsSnapshot

router = APIRouter(tags=["metrics"])
Deps = Annotated[Backend, Depends(backend)]
PROMETHEUS_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}
}


def _cpu(snapshot: MetricsSnapshot) -> float:
    up = [node.cpu_percent or 0.0 for node in snapshot.nodes if node.status == "UP"]
    return round(sum(up) / len(up), 2) if up else 0.0


def _wants_prometheus(request: Request) -> bool:
    # A Prometheus scraper asks for openmetrics-text (or text/plain); browsers and curl get Tork's JSON.
    accept = request.headers.get("accept", "").lower()
    return "openmetrics-text" in accept or accept.startswith("text/plain")


async def _prometheus(b: Backend) -> PlainTextResponse:
    snapshot = await b.coordinator.metrics.remote()
    # Counting every job and task by state is a scan of the store: on the thread pool, with the rendering.
    return await b.offload(_prometheus_text, b, snapshot)


def _prometheus_text(b: Backend, snapshot: MetricsSnapshot) -> PlainTextResponse:
    text = prometheus.render(snapshot, b.store.state_counts(), _cpu(snapshot))
    return PlainTextResponse(text, media_type=prometheus.CONTENT_TYPE)


@router.get(
    "/metrics",
    summary="Running jobs and tasks, online nodes and their CPU (Tork's JSON); Prometheus text if asked for",
    response_model=MetricsOut,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, b: Deps) -> Any:
    if _wants_prometheus(request):
        return await _prometheus(b)
    snapshot: MetricsSnapshot = await b.coordinator.metrics.remote()
    online = sum(1 for node in snapshot.nodes if node.status == "UP")
    return {
        "jobs": {"running": snapshot.jobs_running},
        "tasks": {"running": snapshot.tasks_running},
        "nodes": {"online": online, "cpuPercent": _cpu(snapshot)},
    }


@router.get(
    "/metrics/prometheus",
    summary="Everything of /metrics plus queues, jobs and tasks by state, finished counters, task durations",
    response_class=PlainTextResponse,
    responses=PROMETHEUS_DOC,
)
async def metrics_prometheus(b: Deps) -> PlainTextResponse:
    return await _prometheus(b)
