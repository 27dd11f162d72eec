"""A small HTTP client of tork_ray's (and Tork's) REST API, and submit() for Python users."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from tork_ray.errors import BadRequest, NotFound, TorkError, Unavailable, WaitTimedOut

_ERRORS: dict[int, type[TorkError]] = {400: BadRequest, 404: NotFound, 408: WaitTimedOut, 503: Unavailable}


class Client:
    def __init__(self, endpoint: str = "http://localhost:8000", timeout: float = 60.0) -> None:
        self._http = httpx.Client(base_url=endpoint, timeout=timeout)

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


def submit(job: bytes | str | dict[str, Any], endpoint: str = "http://localhost:8000") -> dict[str, Any]:
    """Submits a job to a running engine; returns its summary (id, state, ...)."""
    client = Client(endpoint)
    try:
        return client.submit(job)
    finally:
        client.close()
