"""Small HTTP and Docker helpers shared by the engine-level outage tests."""

from __future__ import annotations

from typing import Any

import httpx

from tork_ray.runtime.base import LABEL_SCOPE


def submit(http: httpx.Client, document: dict[str, Any]) -> str:
    """Submits `document` as JSON; the new job's id (any other answer fails the test)."""
    response = http.post("/jobs", json=document)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def scope_containers(client: Any, namespace: str, every: bool = False) -> list[Any]:
    """The containers an engine of `namespace` started (running ones, or `every` one)."""
    labelled = {"label": f"{LABEL_SCOPE}={namespace}"}
    # ignore_removed: a container removed while the list is read (a task ending now) is left out, not an error.
    return client.containers.list(all=every, filters=labelled, ignore_removed=True)  # type: ignore[no-any-return]
