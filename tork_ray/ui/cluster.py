"""Queues and nodes: backlog, slots and running per queue, each node's status and CPU, and charts (inline
SVG, no chart library) of tasks/s and queue depth over the last hour. Live through one SSE stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tork_ray.api import nodes as nodes_api
from tork_ray.api import queues as queues_api
from tork_ray.store.ui_queries import last_hour
from tork_ray.ui.calls import backend_of, call
from tork_ray.ui.live import live
from tork_ray.ui.render import html, page

router = APIRouter()
WIDTH, HEIGHT = 600.0, 120.0
CHART_SECONDS = 5.0  # the charts move by the minute: no need to redraw them every second


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    points: str  # an SVG polyline's points
    peak: float
    last: float


def chart(title: str, unit: str, values: list[float]) -> Chart:
    peak = max(values, default=0.0)
    scale = (HEIGHT - 10) / peak if peak else 0.0
    step = WIDTH / max(len(values) - 1, 1)
    points = " ".join(f"{i * step:.1f},{HEIGHT - v * scale:.1f}" for i, v in enumerate(values))
    return Chart(title, unit, points, round(peak, 3), round(values[-1], 3) if values else 0.0)


async def _fragments(request: Request) -> dict[str, str]:
    b = backend_of(request)
    queues: list[dict[str, Any]] = await call(queues_api.list_queues, b)
    nodes: list[dict[str, Any]] = await call(nodes_api.list_nodes, b)
    minutes = await b.offload(last_hour, b.store)
    charts = [
        chart("Tasks per second", "tasks/s", [m.ended / 60 for m in minutes]),
        chart("Queue depth", "tasks waiting", [float(m.waiting) for m in minutes]),
    ]
    return {
        "tables": html("_cluster_tables.html", queues=queues, nodes=nodes),
        "charts": html("_charts.html", charts=charts, width=WIDTH, height=HEIGHT),
    }


@router.get("/cluster")
async def cluster_page(request: Request) -> HTMLResponse:
    return page(request, "cluster.html", fragments=await _fragments(request))


@router.get("/cluster/events")
async def cluster_events(request: Request) -> Response:
    return live(request, lambda: _fragments(request), every=CHART_SECONDS)
