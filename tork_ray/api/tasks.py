"""Routes of /tasks: get a task, read its log (SPEC §5.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tork_ray.api.backend import Backend, backend
from tork_ray.api.jobs import load_job, redact_job
from tork_ray.api.paging import page_body, page_params
from tork_ray.domain.models import Task
from tork_ray.errors import NotFound

router = APIRouter(tags=["tasks"])
Deps = Annotated[Backend, Depends(backend)]


def load_task(b: Backend, task_id: str) -> Task:
    task = b.store.get_task(task_id)
    if task is None:
        raise NotFound("task not found")
    return task


@router.get("/tasks/{task_id}", summary="Get one task instance")
async def get_task(task_id: str, b: Deps) -> dict[str, Any]:
    task = load_task(b, task_id)
    return redact_job(b, load_job(b, task.job_id), task.public())


@router.get("/tasks/{task_id}/log", summary="A task's log parts, newest first")
async def task_log(task_id: str, b: Deps, page: str | None = None, size: str | None = None) -> dict[str, Any]:
    task = load_task(b, task_id)
    number, count = page_params(page, size, default_size=25, max_size=100)
    parts, total = b.store.task_log(task_id, number, count)
    return page_body(redact_job(b, load_job(b, task.job_id), parts), number, count, total)
