"""The jobs list (search, paging, live rows and counts) and a job's page (task tree, timeline, logs, actions)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tork_ray.api import access
from tork_ray.api import jobs as jobs_api
from tork_ray.api import metrics as metrics_api
from tork_ray.api import tasks as tasks_api
from tork_ray.api.backend import Backend
from tork_ray.store.ui_queries import job_counts
from tork_ray.ui.calls import attempt, backend_of, call, caller_of
from tork_ray.ui.live import live
from tork_ray.ui.render import STATES, fragment, html, page
from tork_ray.ui.tree import task_rows

router = APIRouter()
PAGE_SIZE = "20"  # the API's largest page of jobs
METRICS_SECONDS = 2.0
SUBJOBS_SHOWN = 20  # sub-jobs whose tasks a job's page shows inline (the others are linked)


def search_query(q: str, tags: str, state: str) -> str | None:
    """The API's `q` from the form's three fields: words, `tags:a,b`, and the state as a word (the API's search
    matches words against a job's name, description and state)."""
    parts = [q.strip()]
    if tags.strip():
        parts.append("tags:" + ",".join(t.strip() for t in tags.split(",") if t.strip()))
    if state.upper() in STATES:
        parts.append(state.lower())
    return " ".join(p for p in parts if p) or None


def _filters(request: Request) -> dict[str, str]:
    params = request.query_params
    return {name: params.get(name, "") for name in ("q", "tags", "state", "page")}


async def _list_fragments(request: Request, filters: dict[str, str]) -> dict[str, str]:
    b, caller = backend_of(request), await caller_of(request)
    query = search_query(filters["q"], filters["tags"], filters["state"])
    listing, error = await attempt(jobs_api.list_jobs, b, caller, page=filters["page"] or None, size=PAGE_SIZE, q=query)
    counts = await b.offload(job_counts, b.store, access.viewer(caller))
    metrics = await _metrics(request, b)
    return {
        "rows": html("_job_rows.html", listing=listing, error=error, filters=filters),
        "counts": html("_counts.html", counts=counts, metrics=metrics, filters=filters),
    }


async def _metrics(request: Request, b: Backend) -> Any:
    """GET /metrics' answer, shared by every open list of this app for METRICS_SECONDS: the figures are the
    same for every caller, and each read is a call to the coordinator."""
    at, value = getattr(request.app.state, "ui_metrics", (0.0, None))
    if value is None or time.monotonic() - at >= METRICS_SECONDS:
        value = await call(metrics_api.metrics, request, b)
        request.app.state.ui_metrics = (time.monotonic(), value)
    return value


@router.get("/")
@router.get("/jobs")
async def jobs_page(request: Request) -> HTMLResponse:
    filters = _filters(request)
    fragments = await _list_fragments(request, filters)
    events = "jobs/events?" + str(request.url.query) if request.url.query else "jobs/events"
    return page(request, "jobs.html", filters=filters, fragments=fragments, events=f"/ui/{events}")


@router.get("/jobs/events")
async def jobs_events(request: Request) -> Response:
    filters = _filters(request)
    return live(request, lambda: _list_fragments(request, filters))


async def with_subjobs(request: Request, job: dict[str, Any]) -> dict[str, Any]:
    """The job with the tasks of its sub-jobs (one level, at most SUBJOBS_SHOWN) placed under the task that
    made each; each sub-job is read through GET /jobs/{id}'s handler, so one the caller may not see is left out."""
    b, caller = backend_of(request), await caller_of(request)
    execution = list(job.get("execution") or [])
    made = [
        (t["id"], t["subjob"]["id"]) for t in execution if isinstance(t.get("subjob"), dict) and t["subjob"].get("id")
    ]
    for task_id, child_id in made[:SUBJOBS_SHOWN]:
        child, _ = await attempt(jobs_api.get_job, child_id, b, caller)
        for task in (child or {}).get("execution") or []:
            execution.append({**task, "parentId": task.get("parentId") or task_id})
    return {**job, "execution": execution}


async def _detail(request: Request, job: dict[str, Any]) -> str:
    return html("_job_detail.html", job=job, rows=task_rows(await with_subjobs(request, job)))


async def _job_fragments(request: Request, job_id: str) -> dict[str, str]:
    b, caller = backend_of(request), await caller_of(request)
    job = await call(jobs_api.get_job, job_id, b, caller)
    return {"job": await _detail(request, job)}


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str) -> HTMLResponse:
    b, caller = backend_of(request), await caller_of(request)
    job, error = await attempt(jobs_api.get_job, job_id, b, caller)
    if error is not None:
        return page(request, "error.html", status_code=error.status_code, error=error)
    return page(request, "job.html", job=job, detail=await _detail(request, job))


@router.get("/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str) -> Response:
    # A job the caller may not see (or that does not exist) is refused up front, as the API refuses it.
    _, error = await attempt(jobs_api.get_job, job_id, backend_of(request), await caller_of(request))
    if error is not None:
        return fragment("_notice.html", status_code=error.status_code, error=error)
    return live(request, lambda: _job_fragments(request, job_id))


@router.put("/jobs/{job_id}/{action}")
async def job_action(request: Request, job_id: str, action: str) -> HTMLResponse:
    handlers = {"cancel": jobs_api.cancel_job, "restart": jobs_api.restart_job}
    if action not in handlers:
        return fragment("_notice.html", status_code=404, error="no such action")
    b, caller = backend_of(request), await caller_of(request)
    _, error = await attempt(handlers[action], job_id, b, caller)
    done = {"cancel": "Cancel requested.", "restart": "Restart requested."}[action]
    # htmx swaps 4xx answers too (see ui.js): the refusal's message is shown where the action was taken.
    return fragment("_notice.html", status_code=error.status_code if error else 200, error=error, done=done)


@router.get("/jobs/{job_id}/log/stream")
async def job_log_stream(request: Request, job_id: str) -> Response:
    b, caller = backend_of(request), await caller_of(request)
    response: Response = await jobs_api.job_log_stream(job_id, b, caller)
    return response


@router.get("/tasks/{task_id}/log/stream")
async def task_log_stream(request: Request, task_id: str) -> Response:
    b, caller = backend_of(request), await caller_of(request)
    response: Response = await tasks_api.task_log_stream(task_id, b, caller)
    return response
