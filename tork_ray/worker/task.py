"""The Ray task that runs one Tork task on a node serving its queue, and reports back to the coordinator."""

from __future__ import annotations

import functools
import itertools
import os
import socket
import uuid
from dataclasses import replace
from functools import partial
from typing import Any

import ray

from tork_ray.errors import RuntimeFailure, TorkError
from tork_ray.runtime.base import CancelProbe, NoTracker, RunRequest, Runtime, Tracker
from tork_ray.runtime.defaults import with_node_defaults
from tork_ray.settings import RuntimeSettings, runtime_settings_from_env
from tork_ray.worker.interrupts import defer_interrupts, ray_cancel_requested
from tork_ray.worker.logs import LogShipper
from tork_ray.worker.reaper import reaper
from tork_ray.worker.start_report import StartReport, started_now, with_start

RUNTIME_TYPES = ("docker", "shell", "podman")
LOG_DELIVERY_SECONDS = 30.0


def node_settings(runtime: RuntimeSettings) -> RuntimeSettings:
    """The runtime settings in force on this node: what the coordinator sent, overlaid with the node's own
    TORK_RUNTIME_* / TORK_MOUNTS_* variables (so each node of a cluster can choose its runtime)."""
    return runtime_settings_from_env(os.environ, runtime)


def make_runtime(settings: RuntimeSettings, tracker: Tracker | None = None) -> Runtime:
    if settings.type == "docker":
        from tork_ray.runtime.docker import DockerRuntime

        return DockerRuntime(settings, tracker=tracker)
    if settings.type == "shell":
        from tork_ray.runtime.shell import ShellRuntime

        return ShellRuntime(settings, tracker=tracker)
    if settings.type == "podman":
        from tork_ray.runtime.podman import PodmanRuntime

        return PodmanRuntime(settings, tracker=tracker)
    raise RuntimeFailure(f"unknown runtime type: {settings.type} (one of {', '.join(RUNTIME_TYPES)})")


@functools.cache
def _runtime(settings: RuntimeSettings) -> Runtime:
    """One runtime per worker process and settings: a Docker client is cheap to keep and slow-ish to make."""
    return make_runtime(settings, reaper())


def remove_orphans(scope: str, runtime: RuntimeSettings) -> int:
    """Removes everything of `scope` this node's runtime left (none is live: called at engine start)."""
    settings = node_settings(runtime)
    if settings.type == "shell":
        return 0  # no labelled resources: its processes die with their worker's reaper
    return make_runtime(settings, NoTracker()).remove_orphans(scope)


def node_identity() -> dict[str, str]:
    return {"nodeId": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}


def execute(
    request: RunRequest,
    coordinator: Any,
    settings: RuntimeSettings,
    node_id: str,
    cancelled: CancelProbe = ray_cancel_requested,
) -> dict[str, str]:
    """Runs `request`; returns {"result": ...} or {"error": ...}, with the start ("nodeId", "startedAt"). The
    start is reported on its own only if the task runs past request.start_report_delay (start_report.py).
    Cancellation (Ray's interrupt, or `cancelled()` turning true) propagates as KeyboardInterrupt once the
    runtime has removed what it started."""
    started_at = started_now()
    report = partial(coordinator.task_started.remote, request.task_id, node_id, started_at)
    ship = partial(_ship_log, coordinator, request.task_id)
    with StartReport(request.start_report_delay, report), LogShipper(ship) as shipper:
        outcome = _run(request, coordinator, settings, shipper, cancelled)
        ended_at = started_now()
    _await_delivery(shipper.last_sent)
    return with_start(outcome, node_id, started_at, ended_at)


def _ship_log(coordinator: Any, task_id: str, text: str) -> Any:
    return coordinator.append_log.remote(task_id, text)


def _run(
    request: RunRequest, coordinator: Any, settings: RuntimeSettings, shipper: LogShipper, cancelled: CancelProbe
) -> dict[str, str]:
    try:
        # Applied here, not by the coordinator: the limits and the host env are this node's.
        request = replace(with_node_defaults(request, settings, os.environ), attempt=_new_attempt())
        result = _runtime(settings).run(
            request,
            shipper.write,
            lambda value: coordinator.task_progress.remote(request.task_id, value),
            cancelled,
        )
        return {"result": result}
    except TorkError as exc:  # RuntimeFailure, or a bad worker.limits.* / hostenv value on this node
        return {"error": exc.message}
    except Exception as exc:  # a broken daemon or SDK: the task fails with the reason, the worker lives
        return {"error": f"{type(exc).__name__}: {exc}"}


# A run's attempt id (RunRequest.attempt): this process's random prefix and a count, unique across the cluster
# without a system call per task (uuid4 reads /dev/urandom each time).
_PROCESS_ATTEMPTS = f"{uuid.uuid4().hex[:16]}-"
_attempt_numbers = itertools.count()


def _new_attempt() -> str:
    return f"{_PROCESS_ATTEMPTS}{next(_attempt_numbers)}"


def _await_delivery(last_part: Any) -> None:
    """Holds the task's result back until its last log part is stored, so whoever sees the task finished also
    sees its whole log. Waiting on the last part is enough: the coordinator stores parts on one I/O thread in
    the order they were sent. Bounded, so a coordinator that is down delays the result, never loses it."""
    if isinstance(last_part, ray.ObjectRef):
        ray.wait([last_part], timeout=LOG_DELIVERY_SECONDS)


@functools.cache
def _coordinator(name: str, namespace: str) -> Any:
    """One lookup per worker process: the handle stays valid when Ray restarts the actor (same actor id)."""
    return ray.get_actor(name, namespace=namespace)


@ray.remote(num_cpus=0, max_retries=0)
def run_task(
    request: RunRequest,
    coordinator_name: str,
    namespace: str,
    runtime: RuntimeSettings,
) -> dict[str, str]:
    """Entry point placed by the coordinator with resources={"queue:<name>": 1}; `runtime` is the coordinator's
    runtime settings, which the node's own environment may override."""
    # Normally done by the setup hook of the engine's Ray job; here too for workers of a job started without it.
    defer_interrupts()
    coordinator = _coordinator(coordinator_name, namespace)
    node_id = node_identity()["nodeId"]
    try:
        settings = node_settings(runtime)
    except TorkError as exc:  # this node's own TORK_* variables are wrong: every task here fails, saying why
        return with_start({"error": exc.message}, node_id, started_now())
    return execute(request, coordinator, settings, node_id)
