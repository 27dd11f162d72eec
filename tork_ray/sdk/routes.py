"""Every route of the REST API as a Call: the sync and async clients send the same calls."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tork_ray.sdk.calls import Call, Document, call, document_body
from tork_ray.sdk.models import (
    Health,
    Job,
    JobSummary,
    LogPart,
    Metrics,
    Node,
    Page,
    Queue,
    Role,
    ScheduledJob,
    ScheduledJobSummary,
    Task,
    User,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _p(value: str) -> str:
    """An id or name as one path segment (a slash in it cannot reach another route)."""
    return quote(value, safe="")


def _posted(path: str, document: Document, model: type, idempotency_key: str | None) -> Call[Any]:
    body, content_type = document_body(document)
    headers = {"Content-Type": content_type}
    if idempotency_key:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return call("POST", path, model, content=body, headers=headers)


def health() -> Call[Health]:
    # DOWN is a 503 whose body is still the answer.
    return call("GET", "/health", Health, accept=(503,))


def submit(document: Document, idempotency_key: str | None = None) -> Call[JobSummary]:
    # A document with `wait` is answered with the full job once it ends: Job parses both.
    return _posted("/jobs", document, Job, idempotency_key)


def list_jobs(q: str | None, page: int, size: int) -> Call[Page[JobSummary]]:
    return call("GET", "/jobs", Page[JobSummary], params={"q": q, "page": page, "size": size})


def get_job(job_id: str) -> Call[Job]:
    return call("GET", f"/jobs/{_p(job_id)}", Job)


def cancel_job(job_id: str) -> Call[None]:
    return call("PUT", f"/jobs/{_p(job_id)}/cancel")


def restart_job(job_id: str) -> Call[None]:
    return call("PUT", f"/jobs/{_p(job_id)}/restart")


def job_log(job_id: str, q: str | None, page: int, size: int) -> Call[Page[LogPart]]:
    return call("GET", f"/jobs/{_p(job_id)}/log", Page[LogPart], params={"q": q, "page": page, "size": size})


def job_log_stream(job_id: str) -> str:
    return f"/jobs/{_p(job_id)}/log/stream"


def get_task(task_id: str) -> Call[Task]:
    return call("GET", f"/tasks/{_p(task_id)}", Task)


def task_log(task_id: str, q: str | None, page: int, size: int) -> Call[Page[LogPart]]:
    return call("GET", f"/tasks/{_p(task_id)}/log", Page[LogPart], params={"q": q, "page": page, "size": size})


def task_log_stream(task_id: str) -> str:
    return f"/tasks/{_p(task_id)}/log/stream"


def create_scheduled_job(document: Document, idempotency_key: str | None = None) -> Call[ScheduledJobSummary]:
    return _posted("/scheduled-jobs", document, ScheduledJobSummary, idempotency_key)


def list_scheduled_jobs(page: int, size: int) -> Call[Page[ScheduledJobSummary]]:
    return call("GET", "/scheduled-jobs", Page[ScheduledJobSummary], params={"page": page, "size": size})


def get_scheduled_job(scheduled_id: str) -> Call[ScheduledJob]:
    return call("GET", f"/scheduled-jobs/{_p(scheduled_id)}", ScheduledJob)


def pause_scheduled_job(scheduled_id: str) -> Call[None]:
    return call("PUT", f"/scheduled-jobs/{_p(scheduled_id)}/pause")


def resume_scheduled_job(scheduled_id: str) -> Call[None]:
    return call("PUT", f"/scheduled-jobs/{_p(scheduled_id)}/resume")


def delete_scheduled_job(scheduled_id: str) -> Call[None]:
    return call("DELETE", f"/scheduled-jobs/{_p(scheduled_id)}")


def create_user(username: str, password: str, name: str) -> Call[User]:
    return call("POST", "/users", User, json={"username": username, "password": password, "name": name})


def create_role(slug: str, name: str) -> Call[Role]:
    return call("POST", "/roles", Role, json={"slug": slug, "name": name})


def roles() -> Call[list[Role]]:
    return call("GET", "/roles", list[Role])


def role(slug: str) -> Call[Role]:
    return call("GET", f"/roles/{_p(slug)}", Role)


def user_roles(username: str) -> Call[list[Role]]:
    return call("GET", f"/users/{_p(username)}/roles", list[Role])


def add_user_role(username: str, slug: str) -> Call[None]:
    return call("PUT", f"/users/{_p(username)}/roles/{_p(slug)}")


def remove_user_role(username: str, slug: str) -> Call[None]:
    return call("DELETE", f"/users/{_p(username)}/roles/{_p(slug)}")


def nodes() -> Call[list[Node]]:
    return call("GET", "/nodes", list[Node])


def queues() -> Call[list[Queue]]:
    return call("GET", "/queues", list[Queue])


def queue(name: str) -> Call[Queue]:
    return call("GET", f"/queues/{_p(name)}", Queue)


def purge_queue(name: str) -> Call[None]:
    return call("DELETE", f"/queues/{_p(name)}")


def metrics() -> Call[Metrics]:
    return call("GET", "/metrics", Metrics, headers={"Accept": "application/json"})


def prometheus_metrics() -> Call[str]:
    return Call("GET", "/metrics/prometheus", str, text=True)
