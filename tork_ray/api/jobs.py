"""Routes of /jobs: submit, list (with search), get, log, cancel, restart (SPEC §5.1).

Routes that only read the store are plain `def`: FastAPI runs them in its thread pool, so a slow search never
holds up the event loop, and with it every other request (SQLite lets go of the GIL while it works)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tork_ray.api import views
from tork_ray.api.backend import Backend, backend
from tork_ray.api.idempotency import IDEMPOTENCY_HEADER, call_id, submit_id
from tork_ray.api.openapi import JOB_BODY
from tork_ray.api.paging import PageParam, page_params
from tork_ray.api.schemas import ERRORS, ErrorOut, JobOut, JobSummaryOut, Page, StatusOut, TaskLogPartOut
from tork_ray.api.streams import SSE_HEADERS, job_log_events
from tork_ray.errors import TorkError, WaitTimedOut
from tork_ray.spec.models import to_dict
from tork_ray.spec.parse import parse_job
from tork_ray.spec.units import parse_duration

router = APIRouter(tags=["jobs"])
Deps = Annotated[Backend, Depends(backend)]
OK = {"status": "OK"}


def _loose_document(body: bytes) -> Any:
    """Whatever a rejected body holds, only to know which secrets to keep out of the error message."""
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError:
        return None


@router.post(
    "/jobs",
    summary="Submit a job (JSON or YAML); with `wait`, answer once it ends",
    response_model=JobSummaryOut | JobOut,
    response_model_exclude_unset=True,
    openapi_extra={**JOB_BODY, "parameters": [IDEMPOTENCY_HEADER]},
    responses={
        200: {"description": "The job's summary (state PENDING); with `wait`, the full job at its final state"},
        400: ERRORS[400],
        408: {"model": ErrorOut, "description": "`wait` timed out"},
        409: {"model": ErrorOut, "description": "The Idempotency-Key was used before with a different body"},
        413: {"model": ErrorOut, "description": "Body larger than middleware.web.bodylimit"},
    },
)
async def submit_job(request: Request, b: Deps) -> Any:
    body = await request.body()
    request_id, fingerprint = submit_id(request, body)
    try:
        spec = parse_job(body, request.headers.get("content-type"))
    except TorkError as exc:
        raise views.redacted_error(b, exc, _loose_document(body)) from None
    document = to_dict(spec)
    if spec.wait is None:
        # Already the summary's exact JSON shape: sent as is, without a second pass through the response model
        # (the hottest route; that pass cost a tenth of its time).
        summary = await b.coordinator.accept.remote(spec, request_id=request_id, fingerprint=fingerprint)
        return JSONResponse(views.submitted_view(b, summary, document))
    timeout = parse_duration(spec.wait.timeout)
    outcome = await b.coordinator.submit_and_wait.remote(spec, timeout, request_id=request_id, fingerprint=fingerprint)
    if "job" not in outcome:
        raise WaitTimedOut("timeout waiting for job to complete")
    return views.full_job_view(b, outcome["job"])


@router.get(
    "/jobs",
    summary="List jobs, newest first; `q` searches",
    response_model=Page[JobSummaryOut],
    response_model_exclude_unset=True,
    responses={400: ERRORS[400]},
)
def list_jobs(
    b: Deps,
    page: PageParam = None,
    size: Annotated[str | None, Query(description="Jobs per page: default 10, at most 20")] = None,
    q: Annotated[
        str | None,
        Query(description="Words (stemmed, all must match name, description or state), `tag:x`, `tags:a,b`"),
    ] = None,
) -> Any:
    number, count = page_params(page, size, default_size=10, max_size=20)
    jobs, total = b.store.list_jobs(number, count, q)
    return views.page_body(views.summary_views(b, jobs), number, count, total)


@router.get(
    "/jobs/{job_id}",
    summary="Get a job with its execution",
    response_model=JobOut,
    response_model_exclude_unset=True,
    responses={404: ERRORS[404]},
)
def get_job(job_id: str, b: Deps) -> Any:
    return views.job_view(b, views.load_job(b, job_id))


@router.get(
    "/jobs/{job_id}/log",
    summary="Log parts of every task of a job: latest task first, newest part first",
    response_model=Page[TaskLogPartOut],
    response_model_exclude_unset=True,
    responses=ERRORS,
)
def job_log(
    job_id: str,
    b: Deps,
    page: PageParam = None,
    size: Annotated[str | None, Query(description="Parts per page: default 25, at most 100")] = None,
    q: Annotated[str | None, Query(description="Full-text search of the log (totalItems ignores it)")] = None,
) -> Any:
    job = views.load_job(b, job_id)
    number, count = page_params(page, size, default_size=25, max_size=100)
    parts, total = b.store.job_log(job_id, number, count, q)
    return views.log_page_view(b, job, parts, number, count, total)


@router.put(
    "/jobs/{job_id}/cancel",
    summary="Cancel a scheduled or running job",
    response_model=StatusOut,
    responses=ERRORS,
)
async def cancel_job(job_id: str, b: Deps) -> Any:
    await b.coordinator.cancel_job.remote(job_id, request_id=call_id())
    return OK


@router.put(
    "/jobs/{job_id}/restart",
    summary="Restart a failed or cancelled job from its current task",
    response_model=StatusOut,
    responses=ERRORS,
)
async def restart_job(job_id: str, b: Deps) -> Any:
    await b.coordinator.restart_job.remote(job_id, request_id=call_id())
    return OK


@router.get(
    "/jobs/{job_id}/log/stream",
    summary="Follow the log of every task of a job live (server-sent events) until the job ends",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": 'Server-sent events: `event: log` per log line (data: {"taskId", "line"}), then '
            '`event: end` (data: {"jobId", "state"}) once the job has ended',
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        404: ERRORS[404],
    },
)
async def job_log_stream(job_id: str, b: Deps) -> StreamingResponse:
    events = job_log_events(b, views.load_job(b, job_id))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
