"""Routes of /jobs: submit, list (with search), get, log, cancel, restart (SPEC §5.1).

Store reads, parsing, redaction and rendering run on the API's thread pool (`b.offload`): a slow search or a big
document never holds up the event loop, and with it every other request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tork_ray.api import access, views
from tork_ray.api.access import CallerDep
from tork_ray.api.backend import Backend, backend
from tork_ray.api.idempotency import IDEMPOTENCY_HEADER, call_id, submit_id
from tork_ray.api.offload import INLINE_PARSE_BYTES, model_response
from tork_ray.api.openapi import JOB_BODY
from tork_ray.api.paging import PageParam, page_params
from tork_ray.api.schemas import ERRORS, ErrorOut, JobOut, JobSummaryOut, Page, StatusOut, TaskLogPartOut
from tork_ray.api.streams import SSE_HEADERS, job_log_events
from tork_ray.errors import TorkError, WaitTimedOut
from tork_ray.spec.models import JobInput, to_dict
from tork_ray.spec.parse import loose_document, parse_job
from tork_ray.spec.units import parse_duration
from tork_ray.store.auth import Viewer

router = APIRouter(tags=["jobs"])
Deps = Annotated[Backend, Depends(backend)]
OK = {"status": "OK"}


def _read_document(b: Backend, body: bytes, content_type: str | None) -> tuple[JobInput, list[str]]:
    """The submitted job and the values to hide in any answer about it; a rejected body's error message has
    the body's secrets hidden too."""
    try:
        spec = parse_job(body, content_type, limits=b.settings.limits, webhook_targets=b.settings.webhooks.policy)
    except TorkError as exc:
        # The rejected body is read loosely only to keep its secrets out of the message.
        raise views.redacted_error(b, exc, loose_document(body)) from None
    return spec, b.redactor.hidden_values(to_dict(spec))


def _summary_response(b: Backend, summary: dict[str, Any], hidden: list[str]) -> JSONResponse:
    # Already the summary's exact JSON shape: sent as is, without a second pass through the response model
    # (the hottest route; that pass cost a tenth of its time).
    return JSONResponse(views.redacted(b, summary, hidden))


def _full_job_response(b: Backend, body: dict[str, Any]) -> Response:
    return model_response(JobOut, views.full_job_view(b, body), exclude_unset=True)


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
async def submit_job(request: Request, b: Deps, caller: CallerDep) -> Any:
    body = await request.body()
    owner = access.created_by(caller)
    # Idempotency keys are scoped per user: one user's key never answers with another user's job.
    request_id, fingerprint = submit_id(request, body, owner.username if owner else "guest")
    small = len(body) <= INLINE_PARSE_BYTES  # the hot path: a small job is read on the loop (offload.py)
    spec, hidden = await b.offload.unless_small(small, _read_document, b, body, request.headers.get("content-type"))
    if spec.permissions:  # the named users and roles must exist: a store read, so off the loop
        spec = await b.offload(access.checked_permissions, b, spec)
    ids = {"request_id": request_id, "fingerprint": fingerprint, "created_by": owner}
    if spec.wait is None:
        summary = await (await b.offload.unless_small(small, b.coordinator.accept.remote, spec, **ids))
        return await b.offload.unless_small(small, _summary_response, b, summary, hidden)
    # Ray pickles a call's arguments in the calling thread (~50 ms for a 490 KB job): a big one leaves the loop.
    timeout = parse_duration(spec.wait.timeout)
    outcome = await (await b.offload.unless_small(small, b.coordinator.submit_and_wait.remote, spec, timeout, **ids))
    if "job" not in outcome:
        raise WaitTimedOut("timeout waiting for job to complete")
    return await b.offload(_full_job_response, b, outcome["job"])


@router.get(
    "/jobs",
    summary="List jobs, newest first; `q` searches",
    response_model=Page[JobSummaryOut],
    response_model_exclude_unset=True,
    responses={400: ERRORS[400]},
)
async def list_jobs(
    b: Deps,
    caller: CallerDep,
    page: PageParam = None,
    size: Annotated[str | None, Query(description="Jobs per page: default 10, at most 20")] = None,
    q: Annotated[
        str | None,
        Query(description="Words (stemmed, all must match name, description or state), `tag:x`, `tags:a,b`"),
    ] = None,
) -> Any:
    number, count = page_params(page, size, default_size=10, max_size=20)
    return await b.offload(_jobs_page, b, number, count, q, access.viewer(caller))


def _jobs_page(b: Backend, number: int, count: int, q: str | None, viewer: Viewer | None) -> Response:
    jobs, total = b.store.list_jobs(number, count, q, viewer=viewer)
    body = views.page_body(views.summary_views(b, jobs), number, count, total)
    return model_response(Page[JobSummaryOut], body, exclude_unset=True)


@router.get(
    "/jobs/{job_id}",
    summary="Get a job with its execution",
    response_model=JobOut,
    response_model_exclude_unset=True,
    responses={404: ERRORS[404]},
)
async def get_job(job_id: str, b: Deps, caller: CallerDep) -> Any:
    return await b.offload(_job_response, b, job_id, caller)


def _job_response(b: Backend, job_id: str, caller: access.Caller | None) -> Response:
    return model_response(JobOut, views.job_view(b, access.visible_job(b, job_id, caller)), exclude_unset=True)


@router.get(
    "/jobs/{job_id}/log",
    summary="Log parts of every task of a job: latest task first, newest part first",
    response_model=Page[TaskLogPartOut],
    response_model_exclude_unset=True,
    responses=ERRORS,
)
async def job_log(
    job_id: str,
    b: Deps,
    caller: CallerDep,
    page: PageParam = None,
    size: Annotated[str | None, Query(description="Parts per page: default 25, at most 100")] = None,
    q: Annotated[str | None, Query(description="Full-text search of the log (totalItems ignores it)")] = None,
) -> Any:
    return await b.offload(_job_log_page, b, job_id, page, size, q, caller)


def _job_log_page(
    b: Backend, job_id: str, page: str | None, size: str | None, q: str | None, caller: access.Caller | None
) -> Response:
    job = access.visible_job(b, job_id, caller)
    number, count = page_params(page, size, default_size=25, max_size=100)
    parts, total = b.store.job_log(job_id, number, count, q)
    body = views.log_page_view(b, job, parts, number, count, total)
    return model_response(Page[TaskLogPartOut], body, exclude_unset=True)


@router.put(
    "/jobs/{job_id}/cancel",
    summary="Cancel a scheduled or running job",
    response_model=StatusOut,
    responses=ERRORS,
)
async def cancel_job(job_id: str, b: Deps, caller: CallerDep) -> Any:
    if access.restricted(caller):
        await b.offload(access.visible_job, b, job_id, caller)
    await b.coordinator.cancel_job.remote(job_id, request_id=call_id())
    return OK


@router.put(
    "/jobs/{job_id}/restart",
    summary="Restart a failed or cancelled job from its current task",
    response_model=StatusOut,
    responses=ERRORS,
)
async def restart_job(job_id: str, b: Deps, caller: CallerDep) -> Any:
    if access.restricted(caller):
        await b.offload(access.visible_job, b, job_id, caller)
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
async def job_log_stream(job_id: str, b: Deps, caller: CallerDep) -> StreamingResponse:
    events = job_log_events(b, await b.offload(access.visible_job, b, job_id, caller))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
