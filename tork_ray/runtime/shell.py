"""The shell runtime: a task's script as a plain process in its own session, in a temp working directory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import IO

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import CancelProbe, LogSink, NoTracker, ProgressSink, RunRequest, Step, Tracker
from tork_ray.runtime.discard import discarder
from tork_ray.runtime.spawning import SPAWN_LOCK
from tork_ray.runtime.waiting import Deadline, wait_process
from tork_ray.runtime.workspace import (
    ENTRYPOINT_FILE,
    OUTPUT_FILE,
    PROGRESS_FILE,
    LineTail,
    ProgressWatcher,
    prepare,
    read_output,
)
from tork_ray.settings import RuntimeSettings

ERROR_TAIL_LINES = 10


def unsupported_fields(request: RunRequest) -> list[str]:
    """The fields a plain process cannot honour, named as in the job document."""
    names = [
        name
        for name, present in (
            ("mounts", request.mounts),
            ("networks", request.networks),
            ("limits", request.cpus_nano or request.memory_bytes),
            ("sidecars", request.sidecars),
            ("gpus", request.gpus),
        )
        if present
    ]
    for prefix, steps in (("", (request.main,)), ("pre", request.pre), ("post", request.post)):
        for index, step in enumerate(steps):
            where = f"{prefix}[{index}]." if prefix else ""
            for name, present in (
                ("image", step.image),
                ("cmd", step.cmd),
                ("entrypoint", step.entrypoint),
                ("registry", step.registry),
            ):
                if present:
                    names.append(where + name)
    return names


def unsupported_error(names: list[str]) -> str:
    if len(names) == 1:
        return f"{names[0]} is not supported on shell runtime"
    return f"{', '.join(names)} are not supported on shell runtime"


def step_env(step: Step, directory: Path) -> dict[str, str]:
    """ONLY the task's env plus Tork's few: the worker's own environment (its secrets) is not inherited."""
    return {
        **step.env,
        "TORK_OUTPUT": str(directory / OUTPUT_FILE),
        "TORK_PROGRESS": str(directory / PROGRESS_FILE),
        "WORKDIR": str(directory),
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/"),
    }


def step_argv(settings: RuntimeSettings, directory: Path) -> list[str]:
    return [*settings.shell_cmd, str(directory / ENTRYPOINT_FILE)]


def _id(value: str) -> int | None:
    return None if value in ("", "-") else int(value)


class ShellRuntime:
    """Runs pre, main and post as processes; each one's whole process group is killed when it ends."""

    kind = "shell"

    def __init__(self, settings: RuntimeSettings | None = None, *, tracker: Tracker | None = None) -> None:
        self.settings = settings or RuntimeSettings(type="shell")
        self.tracker: Tracker = tracker or NoTracker()

    def run(
        self, request: RunRequest, log: LogSink, progress: ProgressSink, cancelled: CancelProbe | None = None
    ) -> str:
        unsupported = unsupported_fields(request)
        if unsupported:
            raise RuntimeFailure(unsupported_error(unsupported))
        deadline = Deadline(request.timeout_seconds, cancelled)
        workspace = Path(tempfile.mkdtemp(prefix=f"tork-{request.task_id}-"))
        # Keyed by the path: a redelivered task may run again here before the old directory is gone.
        key = str(workspace)
        self.tracker.track(key, {"kind": "path", "workspace": key})
        try:
            for index, step in enumerate(request.pre):
                self._run_step(request, step, workspace / f"pre-{index}", log, None, deadline)
            result = self._run_step(request, request.main, workspace / "main", log, progress, deadline)
            for index, step in enumerate(request.post):
                self._run_step(request, step, workspace / f"post-{index}", log, None, deadline)
            return result
        finally:
            # Every process of the task is dead by now (each step kills its group): nothing uses the directory.
            discarder().discard(workspace, partial(self.tracker.untrack, key))

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int:
        return 0  # processes die with their worker's reaper; nothing is left on the node by label

    def _run_step(
        self,
        request: RunRequest,
        step: Step,
        directory: Path,
        log: LogSink,
        progress: ProgressSink | None,
        deadline: Deadline,
    ) -> str:
        deadline.check()
        if not step.run:
            return ""
        prepare(directory, step, files_dir=directory)
        tail = LineTail(ERROR_TAIL_LINES)
        process: subprocess.Popen[bytes] | None = None
        pump: threading.Thread | None = None
        key = f"{request.task_id}:{directory.name}"
        try:
            process = self._spawn(step, directory)
            self.tracker.track(key, {"kind": "pgid", "pgid": process.pid})
            assert process.stdout is not None
            pump = threading.Thread(target=_pump, args=(process.stdout, log, tail), name="tork-shell-log", daemon=True)
            pump.start()
            code = wait_process(process, deadline, ProgressWatcher(directory, progress).poll)
        finally:
            # Whatever happened (exit, timeout, cancel), nothing the script started outlives it.
            if process is not None:
                _kill_group(process)
            if pump is not None:
                pump.join(timeout=5)
            self.tracker.untrack(key)
        if code != 0:
            lines = "\n".join(tail.lines())
            detail = f": {lines}" if lines else ""
            raise RuntimeFailure(f"error executing command: exit status {code}{detail}")
        return read_output(directory)

    def _spawn(self, step: Step, directory: Path) -> subprocess.Popen[bytes]:
        uid, gid = _id(self.settings.shell_uid), _id(self.settings.shell_gid)
        if uid is not None or gid is not None:
            # mkdtemp made the workspace 0700: another user must be able to reach its own step directory.
            os.chmod(directory.parent, 0o711)
            with contextlib.suppress(OSError):
                os.chown(directory, uid if uid is not None else -1, gid if gid is not None else -1)
        try:
            with SPAWN_LOCK:  # see runtime/spawning.py: no other thread's script is open for writing meanwhile
                return subprocess.Popen(
                    step_argv(self.settings, directory),
                    cwd=directory,
                    env=step_env(step, directory),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so a kill reaches every child
                    user=uid,
                    group=gid,
                    extra_groups=[] if gid is not None else None,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeFailure(f"error executing command: {exc}") from None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _pump(stream: IO[bytes], log: LogSink, tail: LineTail) -> None:
    with stream:
        while True:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                return
            text = chunk.decode(errors="replace")
            tail.feed(text)
            log(text)
