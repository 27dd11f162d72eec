"""The one small contract between a worker and whatever runs a task's script (Docker, shell, Podman)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

LogSink = Callable[[str], None]
ProgressSink = Callable[[float], None]

LABEL_MANAGED = "tork_ray.managed"
LABEL_TASK = "tork_ray.task-id"
LABEL_JOB = "tork_ray.job-id"
LABEL_SCOPE = "tork_ray.scope"


@dataclass(frozen=True)
class Step:
    """One container or process: the main task, or one of its pre/post steps."""

    name: str
    image: str = ""
    run: str = ""
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRequest:
    """A fully rendered task: nothing here is a template, nothing refers to a job's other tasks."""

    task_id: str
    job_id: str
    main: Step
    # Labels the containers with the engine instance, so orphan clean-up never touches another engine's.
    scope: str = ""
    workdir: str = ""
    pre: tuple[Step, ...] = ()
    post: tuple[Step, ...] = ()
    timeout_seconds: float | None = None
    cpus_nano: int | None = None
    memory_bytes: int | None = None
    mounts: tuple[dict[str, Any], ...] = ()
    networks: tuple[str, ...] = ()
    registry: dict[str, str] | None = None
    gpus: str = ""
    sidecars: tuple[dict[str, Any], ...] = ()


class Runtime(Protocol):
    """Runs one task to its end. Returns the content of $TORK_OUTPUT; raises RuntimeFailure (its message
    becomes the task's error) when the task fails: non-zero exit, timeout, out of memory, unsupported field.

    Cancellation reaches a runtime as KeyboardInterrupt (Ray's cancel): every blocking wait must be short
    enough to let it in, and everything started must be removed in `finally`.
    """

    def run(self, request: RunRequest, log: LogSink, progress: ProgressSink) -> str: ...

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int: ...
