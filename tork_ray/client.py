"""tork_ray.Client: the REST API from Python, typed; and tork_ray.submit() for scripts and Ray programs.

    import tork_ray

    job = tork_ray.submit("job.yaml", wait=True)          # the finished Job; JobFailed if it failed
    with tork_ray.Client("http://localhost:8000") as client:
        for line in client.follow_job_log(job.id): ...

The async twin is tork_ray.AsyncClient (tork_ray/aio.py). Every error the API answers is a TorkError subclass
(tork_ray/sdk/calls.py: ERRORS)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

import httpx

from tork_ray.errors import JobFailed, NotFound, TorkError, WaitTimedOut
from tork_ray.sdk import routes
from tork_ray.sdk.calls import Call, Document, EventReader, error_of, read_answer, unreachable
from tork_ray.sdk.discovery import resolve_url
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
# Credentials a client takes from the environment when none are given: basic auth, or the API key.
ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN = "TORK_USERNAME", "TORK_PASSWORD", "TORK_TOKEN"
# auth=: (username, password) for HTTP basic, a str for the API key (Bearer), or any httpx.Auth.
Auth: TypeAlias = "tuple[str, str] | str | httpx.Auth | None"
# A stream waits at most this long for a byte (the server sends a keepalive every 15 s) before reconnecting.
STREAM_READ_SECONDS = 30.0
# Against a server without log streams (Tork's own API), wait() polls the job this often instead.
POLL_SECONDS = 1.0


def credentials(
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[httpx.Auth | None, dict[str, str]]:
    """(basic auth, headers) from the arguments, else from TORK_USERNAME / TORK_PASSWORD / TORK_TOKEN. A token
    wins over a username: with both, the key is sent."""
    env = os.environ if environ is None else environ
    token = token if token is not None else env.get(ENV_TOKEN)
    if token:
        return None, {"Authorization": f"Bearer {token}"}
    username = username if username is not None else env.get(ENV_USERNAME)
    if username:
        password = password if password is not None else env.get(ENV_PASSWORD, "")
        return httpx.BasicAuth(username, password), {}
    return None, {}


def http_options(
    url: str | None, auth: Auth, username: str | None, password: str | None, token: str | None, environ: Any
) -> dict[str, Any]:
    """httpx client arguments: the API's address (tork_ray.sdk.discovery) and the credentials."""
    if isinstance(auth, tuple):
        username, password = auth
    elif isinstance(auth, str):
        token = auth
    basic, headers = credentials(username, password, token, environ)
    chosen = auth if isinstance(auth, httpx.Auth) else basic
    return {"base_url": resolve_url(url, environ), "auth": chosen, "headers": headers}


def finished(job: Job, raise_on_failure: bool) -> Job:
    """The job, or JobFailed carrying it when it did not complete."""
    if raise_on_failure and job.state != "COMPLETED":
        reason = f": {job.error}" if job.error else ""
        raise JobFailed(job, f"job {job.id} ended {job.state}{reason}")
    return job


def deadline_of(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def left(deadline: float | None, job_id: str, state: str, timeout: float | None) -> float:
    """Seconds left before the deadline (at most STREAM_READ_SECONDS); WaitTimedOut once it has passed."""
    if deadline is None:
        return STREAM_READ_SECONDS
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WaitTimedOut(f"job {job_id} is still {state} after {timeout:g}s")
    return min(remaining, STREAM_READ_SECONDS)


class Client:
    """The REST API from Python: one typed method per route.

    `url`: the API's address; by default $TORK_ENDPOINT, else (in a Ray program connected to the engine's
    cluster) the address the engine publishes on Ray, else http://localhost:8000. Credentials: `auth` — a
    (username, password) pair for HTTP basic, a str for the API key, or an httpx.Auth — or `username` /
    `password` / `token`; else $TORK_USERNAME / $TORK_PASSWORD / $TORK_TOKEN.
    `transport`: httpx's (tests, proxies). Close it (or use `with`)."""

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options = http_options(url, auth, username, password, token, environ)
        self._http = httpx.Client(timeout=timeout, transport=transport, **options)

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _send(self, spec: Call[T]) -> T:
        try:
            response = self._http.request(spec.method, spec.path, **spec.request_args())
        except httpx.HTTPError as exc:
            raise unreachable(self._http.base_url, exc) from None
        return read_answer(response, spec)

    # Jobs

    def submit(self, job: Document, *, idempotency_key: str | None = None) -> JobSummary:
        """Submits a job: YAML/JSON text, a path to a file, a dict or a JobInput. Returns its summary (PENDING)."""
        return self._send(routes.submit(job, idempotency_key))

    def run(self, job: Document, *, timeout: float | None = None, raise_on_failure: bool = True) -> Job:
        """Submits a job and waits until it ends (see wait())."""
        return self.wait(self.submit(job).id, timeout=timeout, raise_on_failure=raise_on_failure)

    def wait(self, job_id: str, *, timeout: float | None = None, raise_on_failure: bool = True) -> Job:
        """The job once it has ended. JobFailed (carrying the job) when it FAILED or was CANCELLED, unless
        `raise_on_failure` is False; WaitTimedOut after `timeout` seconds (the job runs on)."""
        deadline = deadline_of(timeout)
        job = self.get_job(job_id)
        while not job.ended:
            self._until_end(job_id, left(deadline, job_id, job.state, timeout))
            job = self.get_job(job_id)
        return finished(job, raise_on_failure)

    def _until_end(self, job_id: str, seconds: float) -> None:
        """Follows the job's log stream until it says the job ended, or for about `seconds`."""
        until = time.monotonic() + seconds
        try:
            for event, _ in self._events(routes.job_log_stream(job_id), read_timeout=seconds):
                if event == "end" or time.monotonic() >= until:
                    return
        except NotFound:  # a server without log streams (Tork's own API): poll the job instead
            time.sleep(min(seconds, POLL_SECONDS))
        except TorkError as exc:
            if not isinstance(exc.__cause__, httpx.ReadTimeout):
                raise

    def get_job(self, job_id: str) -> Job:
        """The job with every task instance (`execution`)."""
        return self._send(routes.get_job(job_id))

    def list_jobs(self, q: str | None = None, page: int = 1, size: int = 10) -> Page[JobSummary]:
        """A page of job summaries, newest first; `q`: words, `tag:x`, `tags:a,b`. At most 20 a page."""
        return self._send(routes.list_jobs(q, page, size))

    def cancel_job(self, job_id: str) -> None:
        self._send(routes.cancel_job(job_id))

    def restart_job(self, job_id: str) -> None:
        """Runs a FAILED or CANCELLED job again from its current task."""
        self._send(routes.restart_job(job_id))

    def job_log(self, job_id: str, q: str | None = None, page: int = 1, size: int = 25) -> Page[LogPart]:
        """Stored log parts of the job's tasks, newest first."""
        return self._send(routes.job_log(job_id, q, page, size))

    def follow_job_log(self, job_id: str) -> Iterator[LogLine]:
        """(task id, line) for every log line of the job's tasks as written, until the job ends."""
        for event, data in self._events(routes.job_log_stream(job_id)):
            if event == "log":
                line = json.loads(data)
                yield LogLine(line["taskId"], line["line"])

    # Tasks

    def get_task(self, task_id: str) -> Task:
        return self._send(routes.get_task(task_id))

    def task_log(self, task_id: str, q: str | None = None, page: int = 1, size: int = 25) -> Page[LogPart]:
        return self._send(routes.task_log(task_id, q, page, size))

    def follow_task_log(self, task_id: str) -> Iterator[str]:
        """The task's log lines as they are written, until the task ends."""
        for event, data in self._events(routes.task_log_stream(task_id)):
            if event == "log":
                yield data

    # Scheduled jobs

    def create_scheduled_job(self, job: Document, *, idempotency_key: str | None = None) -> ScheduledJobSummary:
        """A job document with `schedule: {cron: ...}`: a job is made on every tick."""
        return self._send(routes.create_scheduled_job(job, idempotency_key))

    def list_scheduled_jobs(self, page: int = 1, size: int = 10) -> Page[ScheduledJobSummary]:
        return self._send(routes.list_scheduled_jobs(page, size))

    def get_scheduled_job(self, scheduled_id: str) -> ScheduledJob:
        return self._send(routes.get_scheduled_job(scheduled_id))

    def pause_scheduled_job(self, scheduled_id: str) -> None:
        self._send(routes.pause_scheduled_job(scheduled_id))

    def resume_scheduled_job(self, scheduled_id: str) -> None:
        self._send(routes.resume_scheduled_job(scheduled_id))

    def delete_scheduled_job(self, scheduled_id: str) -> None:
        """Deletes it and every job it made."""
        self._send(routes.delete_scheduled_job(scheduled_id))

    # Users and roles (admin only when auth is on)

    def create_user(self, username: str, password: str, name: str = "") -> User:
        return self._send(routes.create_user(username, password, name))

    def create_role(self, slug: str, name: str = "") -> Role:
        return self._send(routes.create_role(slug, name))

    def roles(self) -> list[Role]:
        return self._send(routes.roles())

    def role(self, slug: str) -> Role:
        """The role with the usernames of its members."""
        return self._send(routes.role(slug))

    def user_roles(self, username: str) -> list[Role]:
        return self._send(routes.user_roles(username))

    def add_user_role(self, username: str, slug: str) -> None:
        self._send(routes.add_user_role(username, slug))

    def remove_user_role(self, username: str, slug: str) -> None:
        self._send(routes.remove_user_role(username, slug))

    # The engine

    def health(self) -> Health:
        """UP, or DOWN with the reason (not an exception: DOWN is an answer)."""
        return self._send(routes.health())

    def nodes(self) -> list[Node]:
        return self._send(routes.nodes())

    def queues(self) -> list[Queue]:
        return self._send(routes.queues())

    def queue(self, name: str) -> Queue:
        return self._send(routes.queue(name))

    def purge_queue(self, name: str) -> None:
        """Empties the queue's backlog (each removed task fails); admin only with auth on."""
        self._send(routes.purge_queue(name))

    def metrics(self) -> Metrics:
        return self._send(routes.metrics())

    def prometheus_metrics(self) -> str:
        """Everything of metrics() and more, in Prometheus' text format."""
        return self._send(routes.prometheus_metrics())

    def _events(self, path: str, read_timeout: float | None = None) -> Iterator[tuple[str, str]]:
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        try:
            with self._http.stream("GET", path, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                yield from EventReader().events(response.iter_lines())
        except httpx.HTTPError as exc:
            raise unreachable(self._http.base_url, exc) from exc


def submit(
    job: Document,
    *,
    wait: bool = False,
    timeout: float | None = None,
    url: str | None = None,
    auth: Auth = None,
) -> Job:
    """Submits a job (YAML/JSON text, a path, a dict or a JobInput) and returns it as a typed Job: as accepted
    (PENDING), or with `wait=True` once it has ended — JobFailed (carrying the job) if it failed or was
    cancelled, WaitTimedOut after `timeout` seconds.

    No `url`: $TORK_ENDPOINT, else — in a Ray program connected to the engine's cluster (ray.init(address=...)
    or ray://...) — the address the engine publishes on Ray, else http://localhost:8000. Credentials: `auth`,
    else $TORK_USERNAME / $TORK_PASSWORD / $TORK_TOKEN."""
    with Client(url, auth=auth) as client:
        summary = client.submit(job)
        if wait:
            return client.wait(summary.id, timeout=timeout)
        return client.get_job(summary.id)
