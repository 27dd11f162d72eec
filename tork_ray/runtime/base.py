"""The one small contract between a worker and whatever runs a task's script (Docker, shell, Podman)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

LogSink = Callable[[str], None]
ProgressSink = Callable[[float], None]
CancelProbe = Callable[[], bool]  # True once the task is cancelled (the worker reads Ray's cancel flag)

LABEL_MANAGED = "tork_ray.managed"
LABEL_TASK = "tork_ray.task-id"
LABEL_JOB = "tork_ray.job-id"
LABEL_SCOPE = "tork_ray.scope"
# One run of a task: a redelivery (after a coordinator restart) or a task sent again runs under the same task id.
LABEL_ATTEMPT = "tork_ray.attempt"

TIMEOUT_ERROR = "context deadline exceeded (task timed out)"
DEFAULT_PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Registry:
    """Credentials for pulling one step's image from a private registry."""

    username: str
    password: str

    def __repr__(self) -> str:  # never print a password into a log or an error
        return f"Registry(username={self.username!r}, password='[REDACTED]')"


@dataclass(frozen=True)
class Step:
    """One container or process: the main task, or one of its pre/post steps or sidecars."""

    name: str
    image: str = ""
    run: str = ""
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    registry: Registry | None = None


@dataclass(frozen=True)
class Probe:
    """A sidecar is ready once GET http://127.0.0.1:<published port><path> answers 200."""

    port: int
    path: str = "/"
    timeout_seconds: float = DEFAULT_PROBE_TIMEOUT


@dataclass(frozen=True)
class Sidecar:
    step: Step
    probe: Probe | None = None


@dataclass(frozen=True)
class Mount:
    type: str  # volume | bind | tmpfs
    target: str
    source: str = ""
    opts: dict[str, str] = field(default_factory=dict)


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
    mounts: tuple[Mount, ...] = ()
    networks: tuple[str, ...] = ()
    gpus: str = ""
    sidecars: tuple[Sidecar, ...] = ()
    # Seconds into the run before the worker reports RUNNING (worker.start_report_delay, chosen per task by the
    # coordinator); a run that ends sooner brings its start with its result. 0: reported at once.
    start_report_delay: float = 0.0
    # This run's own id, set by the worker when it starts the run (worker/task.py). What a dead worker's
    # watchdog or a failed run's sweep removes carries it: a task id alone would also take the containers of a
    # later run of the same task (a redelivery), started while the dead worker's watchdog was still at work.
    attempt: str = ""

    @property
    def steps(self) -> tuple[Step, ...]:
        return (*self.pre, self.main, *self.post)

    def labels(self) -> dict[str, str]:
        """What every container, volume and network of this task carries, for clean-up by label."""
        return {LABEL_MANAGED: "true", LABEL_JOB: self.job_id, **self.run_labels()}

    def run_labels(self) -> dict[str, str]:
        """The labels that pick out this very run's containers, volumes and network, and no other run's."""
        labels = {LABEL_SCOPE: self.scope, LABEL_TASK: self.task_id}
        if self.attempt:
            labels[LABEL_ATTEMPT] = self.attempt
        return labels


class Tracker(Protocol):
    """Keeps, outside the worker process, what to clean up should that process die mid-task (see
    worker/reaper.py). `action` is plain JSON: {"kind": "docker"|"podman", "labels": {...}},
    {"kind": "pgid", "pgid": N} or {"kind": "path"}; any of them may add {"workspace": "<host dir>"}."""

    def track(self, key: str, action: Mapping[str, Any]) -> None: ...

    def untrack(self, key: str) -> None: ...


class NoTracker:
    """For runtimes used outside a worker (tests, clean-up): nothing watches over them."""

    def track(self, key: str, action: Mapping[str, Any]) -> None:
        pass

    def untrack(self, key: str) -> None:
        pass


class Runtime(Protocol):
    """Runs one task to its end. Returns the content of $TORK_OUTPUT; raises RuntimeFailure (its message
    becomes the task's error) when the task fails: non-zero exit, timeout, out of memory, unsupported field.

    Cancellation reaches a runtime as KeyboardInterrupt, raised by its own waits (waiting.TaskCancelled) once
    `cancelled()` turns true: the engine's workers defer Ray's interrupt (worker/interrupts.defer_interrupts),
    so a cancel lands only at a wait, never half-way through an import or an SDK call. Every blocking wait must
    be short, and everything started must be removed in `finally`.
    """

    def run(
        self, request: RunRequest, log: LogSink, progress: ProgressSink, cancelled: CancelProbe | None = None
    ) -> str: ...

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int: ...
