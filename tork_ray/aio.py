"""tork_ray.AsyncClient: the REST API from asyncio programs, the twin of tork_ray.Client (same methods, same
answers, same errors), on httpx.AsyncClient.

    async with tork_ray.AsyncClient("http://localhost:8000") as client:
        job = await client.run("job.yaml")
        async for line in client.follow_job_log(job.id): ...
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TypeVar

import httpx

from tork_ray.client import POLL_SECONDS, Auth, deadline_of, finished, http_options, left
from tork_ray.errors import NotFound, TorkError
from tork_ray.sdk import routes
from tork_ray.sdk.calls import Call, Document, EventReader, error_of, read_answer, unreachable
from tork_ray.sdk.models import (
    Health,
    Job,
    JobSummary,
    LogLine,
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

T = TypeVar("T")


class AsyncClient:
    """The REST API from asyncio programs: Client's twin, every method a coroutine (or an async iterator).

    `url`: the API's address; by default $TORK_ENDPOINT, else (in a Ray program connected to the engine's
    cluster) the address the engine publishes on Ray, else http://localhost:8000. Credentials: `auth` — a
    (username, password) pair for HTTP basic, a str for the API key, or an httpx.Auth — or `username` /
    `password` / `token`; else $TORK_USERNAME / $TORK_PASSWORD / $TORK_TOKEN. `transport`: httpx's (tests, proxies).
    Close it (`await client.aclose()`, or `async with`)."""

    def __init__(
        self,
        url: str | None = None,
        timeout: float = 60.0,
        *,
        auth: Auth = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = http_options(url, auth, username, password, token, environ)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, **options)

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, spec: Call[T]) -> T:
        try:
            response = await self._http.request(spec.method, spec.path, **spec.request_args())
        except httpx.HTTPError as exc:
            raise unreachable(self._http.base_url, exc) from None
        return read_answer(response, spec)

    # Jobs

    async def submit(self, job: Document, *, idempotency_key: str | None = None) -> JobSummary:
        """Submits a job: YAML/JSON text, a path to a file, a dict or a JobInput. Returns its summary (PENDING)."""
        return await self._send(routes.submit(job, idempotency_key))

    async def run(self, job: Document, *, timeout: float | None = None, raise_on_failure: bool = True) -> Job:
        """Submits a job and waits until it ends (see wait())."""
        return await self.wait((await self.submit(job)).id, timeout=timeout, raise_on_failure=raise_on_failure)

    async def wait(self, job_id: str, *, timeout: float | None = None, raise_on_failure: bool = True) -> Job:
        """The job once it has ended. JobFailed (carrying the job) when it FAILED or was CANCELLED, unless
        `raise_on_failure` is False; WaitTimedOut after `timeout` seconds (the job runs on)."""
        deadline = deadline_of(timeout)
        job = await self.get_job(job_id)
        while not job.ended:
            await self._until_end(job_id, left(deadline, job_id, job.state, timeout))
            job = await self.get_job(job_id)
        return finished(job, raise_on_failure)

    async def _until_end(self, job_id: str, seconds: float) -> None:
        """Follows the job's log stream until it says the job ended, or for about `seconds`."""
        until = time.monotonic() + seconds
        try:
            async for event, _ in self._events(routes.job_log_stream(job_id), read_timeout=seconds):
                if event == "end" or time.monotonic() >= until:
                    return
        except NotFound:  # a server without log streams (Tork's own API): poll the job instead
            await asyncio.sleep(min(seconds, POLL_SECONDS))
        except TorkError as exc:
            if not isinstance(exc.__cause__, httpx.ReadTimeout):
                raise

    async def get_job(self, job_id: str) -> Job:
        """The job with every task instance (`execution`)."""
        return await self._send(routes.get_job(job_id))

    async def list_jobs(self, q: str | None = None, page: int = 1, size: int = 10) -> Page[JobSummary]:
        """A page of job summaries, newest first; `q`: words, `tag:x`, `tags:a,b`. At most 20 a page."""
        return await self._send(routes.list_jobs(q, page, size))

    async def cancel_job(self, job_id: str) -> None:
        await self._send(routes.cancel_job(job_id))

    async def restart_job(self, job_id: str) -> None:
        """Runs a FAILED or CANCELLED job again from its current task."""
        await self._send(routes.restart_job(job_id))

    async def job_log(self, job_id: str, q: str | None = None, page: int = 1, size: int = 25) -> Page[LogPart]:
        """Stored log parts of the job's tasks, newest first."""
        return await self._send(routes.job_log(job_id, q, page, size))

    async def follow_job_log(self, job_id: str) -> AsyncIterator[LogLine]:
        """(task id, line) for every log line of the job's tasks as written, until the job ends."""
        async for event, data in self._events(routes.job_log_stream(job_id)):
            if event == "log":
                line = json.loads(data)
                yield LogLine(line["taskId"], line["line"])

    # Tasks

    async def get_task(self, task_id: str) -> Task:
        return await self._send(routes.get_task(task_id))

    async def task_log(self, task_id: str, q: str | None = None, page: int = 1, size: int = 25) -> Page[LogPart]:
        return await self._send(routes.task_log(task_id, q, page, size))

    async def follow_task_log(self, task_id: str) -> AsyncIterator[str]:
        """The task's log lines as they are written, until the task ends."""
        async for event, data in self._events(routes.task_log_stream(task_id)):
            if event == "log":
                yield data

    # Scheduled jobs

    async def create_scheduled_job(self, job: Document, *, idempotency_key: str | None = None) -> ScheduledJobSummary:
        """A job document with `schedule: {cron: ...}`: a job is made on every tick."""
        return await self._send(routes.create_scheduled_job(job, idempotency_key))

    async def list_scheduled_jobs(self, page: int = 1, size: int = 10) -> Page[ScheduledJobSummary]:
        return await self._send(routes.list_scheduled_jobs(page, size))

    async def get_scheduled_job(self, scheduled_id: str) -> ScheduledJob:
        return await self._send(routes.get_scheduled_job(scheduled_id))

    async def pause_scheduled_job(self, scheduled_id: str) -> None:
        await self._send(routes.pause_scheduled_job(scheduled_id))

    async def resume_scheduled_job(self, scheduled_id: str) -> None:
        await self._send(routes.resume_scheduled_job(scheduled_id))

    async def delete_scheduled_job(self, scheduled_id: str) -> None:
        """Deletes it and every job it made."""
        await self._send(routes.delete_scheduled_job(scheduled_id))

    # Users and roles (admin only when auth is on)

    async def create_user(self, username: str, password: str, name: str = "") -> User:
        return await self._send(routes.create_user(username, password, name))

    async def create_role(self, slug: str, name: str = "") -> Role:
        return await self._send(routes.create_role(slug, name))

    async def roles(self) -> list[Role]:
        return await self._send(routes.roles())

    async def role(self, slug: str) -> Role:
        """The role with the usernames of its members."""
        return await self._send(routes.role(slug))

    async def user_roles(self, username: str) -> list[Role]:
        return await self._send(routes.user_roles(username))

    async def add_user_role(self, username: str, slug: str) -> None:
        await self._send(routes.add_user_role(username, slug))

    async def remove_user_role(self, username: str, slug: str) -> None:
        await self._send(routes.remove_user_role(username, slug))

    # The engine

    async def health(self) -> Health:
        """UP, or DOWN with the reason (not an exception: DOWN is an answer)."""
        return await self._send(routes.health())

    async def nodes(self) -> list[Node]:
        return await self._send(routes.nodes())

    async def queues(self) -> list[Queue]:
        return await self._send(routes.queues())

    async def queue(self, name: str) -> Queue:
        return await self._send(routes.queue(name))

    async def purge_queue(self, name: str) -> None:
        """Empties the queue's backlog (each removed task fails); admin only with auth on."""
        await self._send(routes.purge_queue(name))

    async def metrics(self) -> Metrics:
        return await self._send(routes.metrics())

    async def prometheus_metrics(self) -> str:
        """Everything of metrics() and more, in Prometheus' text format."""
        return await self._send(routes.prometheus_metrics())

    async def _events(self, path: str, read_timeout: float | None = None) -> AsyncIterator[tuple[str, str]]:
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        try:
            async with self._http.stream("GET", path, timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_of(response)
                reader = EventReader()
                async for line in response.aiter_lines():
                    if (event := reader.feed(line)) is not None:
                        yield event
        except httpx.HTTPError as exc:
            raise unreachable(self._http.base_url, exc) from exc


async def submit(
    job: Document,
    *,
    wait: bool = False,
    timeout: float | None = None,
    url: str | None = None,
    auth: Auth = None,
) -> Job:
    """tork_ray.submit() for asyncio programs: the same arguments, answers and errors."""
    async with AsyncClient(url, auth=auth) as client:
        summary = await client.submit(job)
        if wait:
            return await client.wait(summary.id, timeout=timeout)
        return await client.get_job(summary.id)
