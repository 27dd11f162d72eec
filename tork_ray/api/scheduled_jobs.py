"""Routes of /scheduled-jobs (SPEC §5.1, §6.1): create, list, get, pause, resume, delete.

Under the `jobs` endpoint toggle. Reads go to the store on the API's thread pool; writes go to the coordinator.
Every answer is redacted (Decisions: secrets never leave the server in clear, scheduled jobs included)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from tork_ray.api import access, views
from tork_ray.api.access import CallerDep
from tork_ray.api.backend import Backend, backend
from tork_ray.api.idempotency import IDEMPOTENCY_HEADER, call_id, submit_id
from tork_ray.api.offload import INLINE_PARSE_BYTES, model_response
from tork_ray.api.paging import PageParam, page_params
from tork_ray.api.schedule_schemas import SCHEDULED_JOB_BODY, ScheduledJobOut, ScheduledJobSummaryOut
from tork_ray.api.schemas import ERRORS, ErrorOut, Page, StatusOut
from tork_ray.domain.schedules import ScheduledJob, next_fire
from tork_ray.errors import NotFound, TorkError
from tork_ray.spec.models import ScheduledJobInput, to_dict
from tork_ray.spec.parse import loose_document, parse_scheduled_job
from tork_ray.store.schedules import get_scheduled_job, list_scheduled_jobs

router = APIRouter(tags=["scheduled jobs"])
Deps = Annotated[Backend, Depends(backend)]
OK = {"status": "OK"}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: ERRORS[404]}


def _read_document(b: Backend, body: bytes, content_type: str | None) -> tuple[ScheduledJobInput, list[str]]:
    try:
        spec = parse_scheduled_job(
            body, content_type, limits=b.settings.limits, webhook_targets=b.settings.webhooks.policy
        )
    except TorkError as exc:
        raise views.redacted_error(b, exc, loose_document(body)) from None
    return spec, b.redactor.hidden_values(to_dict(spec))


def _hidden(b: Backend, scheduled: ScheduledJob) -> list[str]:
    return b.redactor.hidden_values(scheduled.model_dump(mode="json", by_alias=True))


@router.post(
    "/scheduled-jobs",
    summary="Create a scheduled job (JSON or YAML): a job made on every tick of `schedule.cron`",
    response_model=ScheduledJobSummaryOut,
    response_model_exclude_unset=True,
    openapi_extra={**SCHEDULED_JOB_BODY, "parameters": [IDEMPOTENCY_HEADER]},
    responses={
        400: ERRORS[400],
        409: {"model": ErrorOut, "description": "The Idempotency-Key was used before with a different body"},
        413: {"model": ErrorOut, "description": "Body larger than middleware.web.bodylimit"},
    },
)
async def create_scheduled_job(request: Request, b: Deps, caller: CallerDep) -> Any:
    body = await request.body()
    owner = access.created_by(caller)
    # Scoped per user, as POST /jobs: one user's key never answers with another user's scheduled job.
    request_id, fingerprint = submit_id(request, body, owner.username if owner else "guest")
    small = len(body) <= INLINE_PARSE_BYTES
    spec, hidden = await b.offload.unless_small(small, _read_document, b, body, request.headers.get("content-type"))
    if spec.permissions:  # the named users and roles must exist: a store read, so off the loop
        spec = await b.offload(access.checked_permissions, b, spec)
    call = await b.offload.unless_small(
        small,
        b.coordinator.create_scheduled_job.remote,
        spec,
        created_by=owner,
        request_id=request_id,
        fingerprint=fingerprint,
    )
    summary = await call
    return JSONResponse(await b.offload.unless_small(small, views.redacted, b, summary, hidden))


@router.get(
    "/scheduled-jobs",
    summary="List scheduled jobs, newest first",
    response_model=Page[ScheduledJobSummaryOut],
    response_model_exclude_unset=True,
    responses={400: ERRORS[400]},
)
async def list_scheduled(
    b: Deps,
    caller: CallerDep,
    page: PageParam = None,
    size: Annotated[str | None, Query(description="Scheduled jobs per page: default 10, at most 20")] = None,
) -> Any:
    number, count = page_params(page, size, default_size=10, max_size=20)
    return await b.offload(_page, b, number, count, access.viewer(caller))


def _page(b: Backend, number: int, count: int, viewer: access.Viewer | None) -> Response:
    items, total = list_scheduled_jobs(
        b.store, number, count, (viewer.username, sorted(viewer.roles)) if viewer else None
    )
    now = datetime.now(UTC)
    summaries = [views.redacted(b, item.summary(next_fire(item, now)), _hidden(b, item)) for item in items]
    return model_response(
        Page[ScheduledJobSummaryOut], views.page_body(summaries, number, count, total), exclude_unset=True
    )


@router.get(
    "/scheduled-jobs/{scheduled_job_id}",
    summary="Get a scheduled job (its secrets redacted)",
    response_model=ScheduledJobOut,
    response_model_exclude_unset=True,
    responses=NOT_FOUND,
)
async def get_scheduled(scheduled_job_id: str, b: Deps, caller: CallerDep) -> Any:
    return await b.offload(_one, b, scheduled_job_id, caller)


def visible_scheduled_job(b: Backend, scheduled_id: str, caller: access.Caller | None) -> ScheduledJob:
    """The scheduled job, or 404 when it does not exist or the caller may not see it (as for jobs).
    Blocking (a store read): on the API's pool."""
    scheduled = get_scheduled_job(b.store, scheduled_id)
    if scheduled is None or not access.visible(caller, scheduled.permissions, scheduled.created_by.username):
        raise NotFound("scheduled job not found")
    return scheduled


async def _check_visible(b: Backend, scheduled_id: str, caller: access.Caller | None) -> None:
    if access.restricted(caller):
        await b.offload(visible_scheduled_job, b, scheduled_id, caller)


def _one(b: Backend, scheduled_id: str, caller: access.Caller | None) -> Response:
    scheduled = visible_scheduled_job(b, scheduled_id, caller)
    body = views.redacted(b, scheduled.public(next_fire(scheduled, datetime.now(UTC))), _hidden(b, scheduled))
    return model_response(ScheduledJobOut, body, exclude_unset=True)


@router.put(
    "/scheduled-jobs/{scheduled_job_id}/pause",
    summary="Pause an active scheduled job: no more jobs until it is resumed",
    response_model=StatusOut,
    responses=ERRORS,
)
async def pause_scheduled(scheduled_job_id: str, b: Deps, caller: CallerDep) -> Any:
    await _check_visible(b, scheduled_job_id, caller)
    await b.coordinator.pause_scheduled_job.remote(scheduled_job_id, request_id=call_id())
    return OK


@router.put(
    "/scheduled-jobs/{scheduled_job_id}/resume",
    summary="Resume a paused scheduled job from its next tick",
    response_model=StatusOut,
    responses=ERRORS,
)
async def resume_scheduled(scheduled_job_id: str, b: Deps, caller: CallerDep) -> Any:
    await _check_visible(b, scheduled_job_id, caller)
    await b.coordinator.resume_scheduled_job.remote(scheduled_job_id, request_id=call_id())
    return OK


@router.delete(
    "/scheduled-jobs/{scheduled_job_id}",
    summary="Delete a scheduled job and every job it made (their tasks and logs too)",
    response_model=StatusOut,
    responses=NOT_FOUND,
)
async def delete_scheduled(scheduled_job_id: str, b: Deps, caller: CallerDep) -> Any:
    await _check_visible(b, scheduled_job_id, caller)
    await b.coordinator.delete_scheduled_job.remote(scheduled_job_id, request_id=call_id())
    return OK
