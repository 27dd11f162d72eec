"""A small HTTP client of tork_ray's (and Tork's) REST API, and submit() for Python users."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from tork_ray.errors import (
    AlreadyExists,
    BadRequest,
    Forbidden,
    NotFound,
    TorkError,
    Unauthorized,
    Unavailable,
    WaitTimedOut,
)

_ERRORS: dict[int, type[TorkError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: WaitTimedOut,
    409: AlreadyExists,
    503: Unavailable,
}
# Credentials a client takes from the environment when none are given: basic auth, or the API key.
ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN = "TORK_USERNAME", "TORK_PASSWORD", "TORK_TOKEN"


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


class Client:
    """The REST API from Python. Credentials: `username` and `password` (HTTP basic) or `token` (the API key,
    sent as `Authorization: Bearer`), or else the TORK_USERNAME / TORK_PASSWORD / TORK_TOKEN variables."""

    def __init__(
        self,
        endpoint: str = "http://localhost:8000",
        timeout: float = 60.0,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        auth, headers = credentials(username, password, token, environ)
        self._http = httpx.Client(base_url=endpoint, timeout=timeout, auth=auth, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach {self._http.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise _ERRORS.get(response.status_code, TorkError)(message)
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def submit(self, job: bytes | str | dict[str, Any], content_type: str = "text/yaml") -> dict[str, Any]:
        """Submits a job document (YAML/JSON text, or a dict sent as JSON); returns the job summary."""
        if isinstance(job, dict):
            body, content_type = json.dumps(job).encode(), "application/json"
        else:
            body = job.encode() if isinstance(job, str) else job
        return self._call("POST", "/jobs", content=body, headers={"Content-Type": content_type})

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> None:
        self._call("PUT", f"/jobs/{job_id}/cancel")

    def restart_job(self, job_id: str) -> None:
        self._call("PUT", f"/jobs/{job_id}/restart")

    def list_jobs(self, q: str | None = None, page: int = 1, size: int = 10) -> dict[str, Any]:
        """A page of job summaries, newest first; `q`: words, `tag:x`, `tags:a,b`."""
        return self._call("GET", "/jobs", params=_params(q=q, page=page, size=size))

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/tasks/{task_id}")

    def task_log(self, task_id: str, q: str | None = None, page: int = 1, size: int = 25) -> dict[str, Any]:
        return self._call("GET", f"/tasks/{task_id}/log", params=_params(q=q, page=page, size=size))

    def job_log(self, job_id: str, q: str | None = None, page: int = 1, size: int = 25) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/log", params=_params(q=q, page=page, size=size))

    def follow_task_log(self, task_id: str) -> Iterator[str]:
        """The task's log lines as they are written (server-sent events), until the task ends."""
        for event, data in self._events(f"/tasks/{task_id}/log/stream"):
            if event == "log":
                yield data

    def follow_job_log(self, job_id: str) -> Iterator[tuple[str, str]]:
        """(task id, line) for every log line of the job's tasks as written, until the job ends."""
        for event, data in self._events(f"/jobs/{job_id}/log/stream"):
            if event == "log":
                line = json.loads(data)
                yield line["taskId"], line["line"]

    def queues(self) -> list[dict[str, Any]]:
        return self._call("GET", "/queues")

    def queue(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/queues/{name}")

    def purge_queue(self, name: str) -> None:
        self._call("DELETE", f"/queues/{name}")

    def nodes(self) -> list[dict[str, Any]]:
        return self._call("GET", "/nodes")

    def metrics(self) -> dict[str, Any]:
        return self._call("GET", "/metrics")

    def create_user(self, username: str, password: str, name: str = "") -> dict[str, Any]:
        return self._call("POST", "/users", json={"username": username, "password": password, "name": name})

    def create_role(self, slug: str, name: str = "") -> dict[str, Any]:
        return self._call("POST", "/roles", json={"slug": slug, "name": name})

    def roles(self) -> list[dict[str, Any]]:
        return self._call("GET", "/roles")

    def role(self, slug: str) -> dict[str, Any]:
        """The role with the usernames of its members."""
        return self._call("GET", f"/roles/{slug}")

    def user_roles(self, username: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/users/{username}/roles")

    def add_user_role(self, username: str, slug: str) -> None:
        self._call("PUT", f"/users/{username}/roles/{slug}")

    def remove_user_role(self, username: str, slug: str) -> None:
        self._call("DELETE", f"/users/{username}/roles/{slug}")

    def _events(self, path: str) -> Iterator[tuple[str, str]]:
        try:
            with self._http.stream("GET", path, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _ERRORS.get(response.status_code, TorkError)(response.json().get("message", ""))
                event, data = "message", []
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line[len("event: ") :]
                    elif line.startswith("data: "):
                        data.append(line[len("data: ") :])
                    elif not line and data:
                        yield event, "\n".join(data)
                        event, data = "message", []
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach {self._http.base_url}: {exc}") from None


def _params(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def submit(
    job: bytes | str | dict[str, Any],
    endpoint: str = "http://localhost:8000",
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Submits a job to a running engine; returns its summary (id, state, ...). Credentials: username and
    password, or token (else the TORK_USERNAME / TORK_PASSWORD / TORK_TOKEN variables)."""
    client = Client(endpoint, username=username, password=password, token=token)
    try:
        return client.submit(job)
    finally:
        client.close()
