"""The Ray task that runs one Tork task on a node serving its queue, and reports back to the coordinator."""

from __future__ import annotations

import functools
import os
import socket
from typing import Any

import ray

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import RunRequest, Runtime
from tork_ray.worker.logs import LogShipper


@functools.cache
def _runtime(kind: str, privileged: bool) -> Runtime:
    """One runtime per worker process: a Docker client is cheap to keep and slow-ish to make."""
    if kind == "docker":
        from tork_ray.runtime.docker import DockerRuntime

        return DockerRuntime(privileged=privileged)
    raise RuntimeFailure(f"unknown runtime type: {kind}")


def node_identity() -> dict[str, str]:
    return {"nodeId": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}


def execute(request: RunRequest, coordinator: Any, runtime_kind: str, privileged: bool) -> dict[str, str]:
    """Runs `request`; returns {"result": ...} or {"error": ...}. Cancellation propagates as KeyboardInterrupt."""
    coordinator.task_started.remote(request.task_id, node_identity()["nodeId"])
    with LogShipper(lambda text: coordinator.append_log.remote(request.task_id, text)) as shipper:
        try:
            runtime = _runtime(runtime_kind, privileged)
            result = runtime.run(
                request, shipper.write, lambda value: coordinator.task_progress.remote(request.task_id, value)
            )
            return {"result": result}
        except RuntimeFailure as exc:
            return {"error": exc.message}
        except Exception as exc:  # a broken daemon or SDK: the task fails with the reason, the worker lives
            return {"error": f"{type(exc).__name__}: {exc}"}


@ray.remote(num_cpus=0, max_retries=0)
def run_task(
    request: RunRequest, coordinator_name: str, namespace: str, runtime_kind: str, privileged: bool
) -> dict[str, str]:
    """Entry point placed by the coordinator with resources={"queue:<name>": 1}."""
    coordinator = ray.get_actor(coordinator_name, namespace=namespace)
    os.environ.setdefault("TORK_RAY_WORKER", "1")
    return execute(request, coordinator, runtime_kind, privileged)
