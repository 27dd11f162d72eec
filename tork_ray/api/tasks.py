"""Routes of /tasks: get a task, read its log, follow its log live (SPEC §5.1, plus server-sent events).

Store reads, redaction and rendering run on the API's thread pool, for the reason given in jobs.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from tork_ray.api import views
from tork_ray.api.access import Caller, CallerDep, visible_task
from tork_ray.api.backend import Backend, backend
from tork_ray.api.offload import model_response
from tork_ray.api.paging import PageParam, page_params
from tork_ray.api.schemas import ERRORS, Page, TaskLogPartOut, TaskOut
from tork_ray.api.streams import SSE_HEADERS, task_log_events
from tork_ray.domain.models import Job, Task

router = APIRouter(tags=["tasks"])
Deps = Annotated[Backend, Depends(backend)]

STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `event: log` per log line (data: the line), then `event: end` "
        '(data: {"taskId", "state"}) once the task has ended',
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    404: ERRORS[404],
}


@router.get(
    "/tasks/{task_id}",
    summary="Get one task instance",
    response_model=TaskOut,
    response_model_exclude_unset=True,
    responses={404: ERRORS[404]},
)
async def get_task(task_id: str, b: Deps, caller: CallerDep) -> Any:
    return await b.offload(_task_response, b, task_id, caller)


def _task_response(b: Backend, task_id: str, caller: Caller | None) -> Response:
    return model_response(TaskOut, views.task_view(b, visible_task(b, task_id, caller)), exclude_unset=True)


@router.get(
    "/tasks/{task_id}/log",
    summary="A task's log parts, newest first",
    response_model=Page[TaskLogPartOut],
    response_model_exclude_unset=True,
    responses=ERRORS,
)
async def task_log(
    task_id: str,
    b: Deps,
    caller: CallerDep,
    page: PageParam = None,
    size: Annotated[str | None, Query(description="Parts per page: default 25, at most 100")] = None,
    q: Annotated[str | None, Query(description="Full-text search of the log (totalItems ignores it)")] = None,
) -> Any:
    return await b.offload(_task_log_page, b, task_id, page, size, q, caller)


def _task_log_page(
    b: Backend, task_id: str, page: str | None, size: str | None, q: str | None, caller: Caller | None
) -> Response:
    task = visible_task(b, task_id, caller)
    number, count = page_params(page, size, default_size=25, max_size=100)
    parts, total = b.store.task_log(task_id, number, count, q)
    body = views.log_page_view(b, views.load_job(b, task.job_id), parts, number, count, total)
    return model_response(Page[TaskLogPartOut], body, exclude_unset=True)


def _task_and_job(b: Backend, task_id: str, caller: Caller | None) -> tuple[Task, Job]:
    task = visible_task(b, task_id, caller)
    return task, views.load_job(b, task.job_id)


@router.get(
    "/tasks/{task_id}/log/stream",
    summary="Follow a task's log live (server-sent events) until the task ends",
    response_class=StreamingResponse,
    responses=STREAM_DOC,
)
async def task_log_stream(task_id: str, b: Deps, caller: CallerDep) -> StreamingResponse:
    task, job = await b.offload(_task_and_job, b, task_id, caller)
    events = task_log_events(b, task, job)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
