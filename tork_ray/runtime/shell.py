"""The shell runtime: a task's script as a plain process in its own session, in a temp working directory."""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import select
import signal
import subprocess
import tempfile
import time
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
OUTPUT_DRAIN_SECONDS = 5.0
PULL_CHUNKS = 16  # of 64 KiB


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
        for index, step in enumerate(request.pre):
            self._run_step(request, step, f"pre-{index}", log, None, deadline)
        result = self._run_step(request, request.main, "main", log, progress, deadline)
        for index, step in enumerate(request.post):
            self._run_step(request, step, f"post-{index}", log, None, deadline)
        return result

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int:
        return 0  # processes die with their worker's reaper; nothing is left on the node by label

    def _run_step(
        self,
        request: RunRequest,
        step: Step,
        label: str,
        log: LogSink,
        progress: ProgressSink | None,
        deadline: Deadline,
    ) -> str:
        """One step in a temp dir of its own (its cwd and $WORKDIR, as Tork's shell runtime gives each), holding
        its script, its `files` and, once the script writes them, $TORK_OUTPUT and $TORK_PROGRESS."""
        deadline.check()
        if not step.run:
            return ""
        directory = Path(tempfile.mkdtemp(prefix=f"tork-{request.task_id}-{label}-"))
        # Keyed by the path: a redelivered task may run again here before the old directory is gone.
        workspace_key = str(directory)
        self.tracker.track(workspace_key, {"kind": "path", "workspace": workspace_key})
        try:
            return self._run_in(request, step, directory, log, progress, deadline)
        finally:
            # Every process of the step is dead by now (its group was killed): nothing uses the directory.
            discarder().discard(directory, partial(self.tracker.untrack, workspace_key), likely=(ENTRYPOINT_FILE,))

    def _run_in(
        self,
        request: RunRequest,
        step: Step,
        directory: Path,
        log: LogSink,
        progress: ProgressSink | None,
        deadline: Deadline,
    ) -> str:
        prepare(directory, step, files_dir=directory, shared=False, made=True)
        output: ScriptOutput | None = None
        process: subprocess.Popen[bytes] | None = None
        key = f"{request.task_id}:{directory.name}"
        try:
            process = self._spawn(step, directory)
            self.tracker.track(key, {"kind": "pgid", "pgid": process.pid})
            assert process.stdout is not None
            output = ScriptOutput(process.stdout, log)
            code = wait_process(process, deadline, ProgressWatcher(directory, progress).poll, output)
        finally:
            # Whatever happened (exit, timeout, cancel), nothing the script started outlives it.
            if process is not None:
                _kill_group(process)
            if output is not None:
                output.drain(OUTPUT_DRAIN_SECONDS)
            self.tracker.untrack(key)
        if code != 0:
            assert output is not None
            lines = "\n".join(output.tail.lines())
            detail = f": {lines}" if lines else ""
            raise RuntimeFailure(f"error executing command: exit status {code}{detail}")
        return read_output(directory)

    def _spawn(self, step: Step, directory: Path) -> subprocess.Popen[bytes]:
        uid, gid = _id(self.settings.shell_uid), _id(self.settings.shell_gid)
        if uid is not None or gid is not None:
            # mkdtemp made the directory 0700, the worker's: the task's user must own it to write in it.
            with contextlib.suppress(OSError):
                os.chown(directory, uid if uid is not None else -1, gid if gid is not None else -1)
        try:
            with SPAWN_LOCK:  # see runtime/spawning.py: no other thread's script is open for writing meanwhile
                return subprocess.Popen(
                    step_argv(self.settings, directory),
                    cwd=directory,
                    env=step_env(step, directory),
                    stdin=_devnull(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so a kill reaches every child
                    user=uid,
                    group=gid,
                    extra_groups=[] if gid is not None else None,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeFailure(f"error executing command: {exc}") from None


@functools.cache
def _devnull() -> int:
    """/dev/null, opened once per process for every step's stdin (subprocess.DEVNULL opens and closes it each
    time); close-on-exec here, while the child's dup of it to its stdin is not."""
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


class ScriptOutput:
    """The script's stdout and stderr (one pipe), read by the thread that waits for the script (wait_process
    polls the pipe with the process): no thread of its own per step, whose start and join were a measurable
    part of a trivial task's cost. Each chunk goes to the task's log and to the tail kept for an error."""

    def __init__(self, stream: IO[bytes], log: LogSink) -> None:
        self._stream = stream
        self._log = log
        self.tail = LineTail(ERROR_TAIL_LINES)
        self._open = True
        # A character split between two reads is decoded whole, not as two replacement characters.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        os.set_blocking(stream.fileno(), False)

    def fileno(self) -> int:
        return self._stream.fileno()

    def pull(self) -> bool:
        """Reads what the pipe holds now, up to PULL_CHUNKS reads (a script that writes without pause must not
        keep the waiting thread from its timeout and cancel checks); False once the pipe reached end-of-file
        (every writer closed it)."""
        for _chunk in range(PULL_CHUNKS):
            if not self._open:
                return False
            try:
                chunk = os.read(self._stream.fileno(), 65536)
            except BlockingIOError:
                return True
            if not chunk:
                self._close()
                break
            self._feed(self._decoder.decode(chunk))
        return self._open

    def _feed(self, text: str) -> None:
        if text:
            self.tail.feed(text)
            self._log(text)

    def _close(self) -> None:
        self._open = False
        self._stream.close()
        self._feed(self._decoder.decode(b"", final=True))

    def drain(self, seconds: float) -> None:
        """Reads the rest, once the script's group is dead: until end-of-file, or for `seconds` at most (a
        process that left the group by starting its own session may hold the pipe open for ever)."""
        end = time.monotonic() + seconds
        poller = select.poll()
        if self._open:
            poller.register(self._stream.fileno(), select.POLLIN)
        while self.pull():
            left = end - time.monotonic()
            if left <= 0:
                self._close()
                return
            poller.poll(left * 1000)
