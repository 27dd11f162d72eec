"""Containers that run until the test says so: an event to wait on, where a `sleep` would be a timing window."""

from __future__ import annotations

from typing import Any

from docker.errors import APIError

# Runs until /tmp/go exists in its own container; open_gates() makes it. Never ends on its own.
GATED = "until [ -e /tmp/go ]; do sleep 0.1; done"


def running_containers(docker_client: Any, job_id: str) -> list[Any]:
    labelled = {"label": f"tork_ray.job-id={job_id}", "status": "running"}
    return docker_client.containers.list(filters=labelled, ignore_removed=True)  # type: ignore[no-any-return]


def open_gates(docker_client: Any, job_id: str, skip_task: str = "") -> int:
    """Lets every gated container of the job that runs now finish (but those of task `skip_task`); returns how
    many were opened."""
    opened = 0
    for container in running_containers(docker_client, job_id):
        if skip_task and container.labels.get("tork_ray.task-id") == skip_task:
            continue
        try:
            if container.exec_run(["touch", "/tmp/go"]).exit_code == 0:
                opened += 1
        except APIError:  # removed meanwhile: nothing to open
            continue
    return opened
