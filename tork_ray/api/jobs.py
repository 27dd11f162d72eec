"""Routes of /jobs: submit, list, get, log, cancel, restart (SPEC §5.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from tork_ray.api.backend import Backend, backend
from tork_ray.api.paging import page_body, page_params
from tork_ray.domain.models import Job
from tork_ray.errors import NotFound, PayloadTooLarge, WaitTimedOut
from tork_ray.spec.parse import parse_job
from tork_ray.spec.units import parse_duration, parse_memory

router = APIRouter(tags=["jobs"])
Deps = Annotated[Backend, Depends(backend)]
OK = {"status": "OK"}


def job_secrets(b: Backend, job: Job) -> set[str]:
    """The values to hide in anything shown of `job`: its secrets, and inputs under secret-looking keys."""
    hidden = {str(v) for v in job.secrets.values() if v}
    hidden |= {str(v) for k, v in job.inputs.items() if v and b.redactor.key_is_secret(k)}
    return hidden


def redact_job(b: Backend, job: Job, body: Any) -> Any:
    return b.redactor.redact(body, job_secrets(b, job))


def load_job(b: Backend, job_id: str) -> Job:
    job = b.store.get_job(job_id)
    if job is None:
        raise NotFound("job not found")
    return job


async def read_body(request: Request, limit: str) -> bytes:
    max_bytes = parse_memory(limit)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than the limit of {limit}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit}")
    return body


@router.post("/jobs", summary="Submit a job (JSON or YAML); with `wait`, answer once it ends")
async def submit_job(request: Request, b: Deps) -> JSONResponse:
    body = await read_body(request, b.settings.api.body_limit)
    spec = parse_job(body, request.headers.get("content-type"))
    if spec.wait is None:
        summary = await b.coordinator.submit.remote(spec)
        job = load_job(b, summary["id"])
        return JSONResponse(redact_job(b, job, summary))
    outcome = await b.coordinator.submit_and_wait.remote(spec, parse_duration(spec.wait.timeout))
    if "job" not in outcome:
        raise WaitTimedOut("timeout waiting for job to complete")
    return JSONResponse(redact_job(b, load_job(b, outcome["job"]["id"]), outcome["job"]))


@router.get("/jobs", summary="List jobs, newest first, in Tork's page shape")
async def list_jobs(b: Deps, page: str | None = None, size: str | None = None, q: str | None = None) -> dict[str, Any]:
    number, count = page_params(page, size, default_size=10, max_size=20)
    jobs, total = b.store.list_jobs(number, count)
    return page_body([redact_job(b, job, job.summary()) for job in jobs], number, count, total)


@router.get("/jobs/{job_id}", summary="Get a job with its execution")
async def get_job(job_id: str, b: Deps) -> dict[str, Any]:
    job = load_job(b, job_id)
    return redact_job(b, job, job.public(b.store.job_tasks(job_id)))


@router.get("/jobs/{job_id}/log", summary="Log parts of every task of a job")
async def job_log(
    job_id: str, b: Deps, page: str | None = None, size: str | None = None, q: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    job = load_job(b, job_id)
    number, count = page_params(page, size, default_size=25, max_size=100)
    parts, total = b.store.job_log(job_id, number, count)
    return page_body(redact_job(b, job, parts), number, count, total)


@router.put("/jobs/{job_id}/cancel", summary="Cancel a scheduled or running job")
async def cancel_job(job_id: str, b: Deps) -> dict[str, str]:
    await b.coordinator.cancel_job.remote(job_id)
    return OK


@router.put("/jobs/{job_id}/restart", summary="Restart a failed or cancelled job from its current task")
async def restart_job(job_id: str, b: Deps) -> dict[str, str]:
    await b.coordinator.restart_job.remote(job_id)
    return OK
