"""A watchdog process beside each worker process: should the worker die mid-task (SIGKILL, OOM killer, a node
agent gone mad), it removes what the task left: its containers, volumes, network or process group, and its
temp directory."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from tork_ray.runtime.spawning import SPAWN_LOCK

log = logging.getLogger(__name__)

# A create call the daemon was still serving when the worker died lands a moment later: look twice.
SECOND_PASS_SECONDS = 2.0
# How the watchdog reads the worker's messages (watch()): what came, every READ_PAUSE_SECONDS while they come. The
# worker's pipe holds PIPE_BYTES meanwhile (a task's four messages are ~0.8 kB: 1 MiB is 1,300 tasks).
READ_PAUSE_SECONDS = 0.05
READ_BYTES = 1 << 16
PIPE_BYTES = 1 << 20


class Reaper:
    """The worker side: tells the watchdog what is in flight. It learns of the worker's death from its stdin
    reaching end-of-file, which the kernel guarantees however the worker dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Mapping[str, Any]] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def track(self, key: str, action: Mapping[str, Any]) -> None:
        with self._lock:
            self._pending[key] = action
            self._send({"add": key, "action": dict(action)})

    def untrack(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)
            self._send({"del": key})

    def _send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message) + "\n").encode()
        for _attempt in (1, 2):
            try:
                stdin = self._stdin()
                stdin.write(line)
                stdin.flush()
                return
            except OSError:  # the watchdog itself died: the next one is told everything still in flight
                self._process = None
        log.warning("task reaper unavailable: a crash of this worker may leave containers behind")

    def _stdin(self) -> IO[bytes]:
        if self._process is None or self._process.poll() is not None:
            with SPAWN_LOCK:  # see runtime/spawning.py
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "tork_ray.worker.reaper"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a signal to the worker's process group must not take it along
                )
            assert self._process.stdin is not None
            with contextlib.suppress(OSError):  # not Linux, or above the system's limit: the default size
                fcntl.fcntl(self._process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            for key, action in self._pending.items():
                self._process.stdin.write((json.dumps({"add": key, "action": dict(action)}) + "\n").encode())
        assert self._process.stdin is not None
        return self._process.stdin


@functools.cache
def reaper() -> Reaper:
    """One watchdog per worker process, started with the first task."""
    return Reaper()


def clean_up(action: Mapping[str, Any]) -> None:
    """Carries out one action (the watchdog side); any action may also name the task's host workspace."""
    kind = action.get("kind")
    if action.get("workspace"):
        shutil.rmtree(str(action["workspace"]), ignore_errors=True)
    if kind == "pgid":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(action["pgid"]), signal.SIGKILL)
    elif kind == "docker":
        import docker

        from tork_ray.runtime.docker_resources import remove_labelled

        remove_labelled(docker.from_env(), dict(action["labels"]))
    elif kind == "podman":
        from tork_ray.runtime.podman import remove_labelled as remove_podman

        remove_podman(dict(action["labels"]))


def watch(stream: IO[bytes], pause: float = READ_PAUSE_SECONDS) -> dict[str, Mapping[str, Any]]:
    """Follows the worker's messages until end-of-file; returns what was still in flight then.

    While messages come, it reads what has come every `pause` seconds rather than wait in a read: a reader
    waiting on the pipe is woken by every write, which made each message a switch to this process and back (four
    a task: ~0.14 ms of the worker's time each on 2 busy cores). A message is safe once written, whenever it is
    read: the pipe keeps it after the worker's death. When nothing came for a pause, it waits on the pipe again,
    so an idle worker's watchdog costs nothing."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    pending: dict[str, Mapping[str, Any]] = {}
    rest = b""
    while True:
        try:
            chunk = os.read(fd, READ_BYTES)
        except BlockingIOError:
            select.select([fd], [], [])  # nothing since the last pause: wait for the next message
            continue
        if not chunk:
            break
        *lines, rest = (rest + chunk).split(b"\n")
        for raw in lines:
            _apply(raw, pending)
        if len(chunk) < READ_BYTES:  # all that had come is read (a full read may have left more: read on)
            time.sleep(pause)
    _apply(rest, pending)
    return pending


def _apply(raw: bytes, pending: dict[str, Mapping[str, Any]]) -> None:
    try:
        message = json.loads(raw)
    except ValueError:
        return
    if "add" in message:
        pending[message["add"]] = message["action"]
    elif "del" in message:
        pending.pop(message["del"], None)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal reaches the worker, not us
    pending = watch(sys.stdin.buffer)
    if not pending:
        return
    for second_pass in (False, True):
        if second_pass:
            time.sleep(SECOND_PASS_SECONDS)
        for action in pending.values():
            try:
                clean_up(action)
            except Exception as exc:  # one failure must not stop the others
                print(f"tork_ray reaper: {action}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
