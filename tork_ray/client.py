"""A small HTTP client of tork_ray's (and Tork's) REST API, and submit() for Python users."""

from __future__ import annotations

import json
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


def submit(job: bytes | str | dict[str, Any], endpoint: str = "http://localhost:8000") -> dict[str, Any]:
    """Submits a job to a running engine; returns its summary (id, state, ...)."""
    client = Client(endpoint)
    try:
        return client.submit(job)
    finally:
        client.close()
