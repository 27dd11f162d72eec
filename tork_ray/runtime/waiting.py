"""Deadlines and interruptible waits: a cancel or a timeout lands only between short steps, so nothing blocks long."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import TIMEOUT_ERROR, CancelProbe

T = TypeVar("T")

POLL_SECONDS = 0.5


class TaskCancelled(KeyboardInterrupt):
    """The task was cancelled. A KeyboardInterrupt, as Ray's own cancel raises it: one clean-up path serves
    both, and Ray reports either as the task's cancellation."""


class Deadline:
    """The task's timeout, shared by every step (pre + sidecars + main + post), as Tork's context deadline;
    and its cancel probe, which every wait checks with it."""

    def __init__(self, seconds: float | None, cancelled: CancelProbe | None = None) -> None:
        self.at = time.monotonic() + seconds if seconds else None
        self.cancelled = cancelled

    def remaining(self, cap: float = POLL_SECONDS) -> float:
        """Seconds to block for at most: `cap`, or less when the deadline is nearer."""
        return cap if self.at is None else max(0.0, min(cap, self.at - time.monotonic()))

    def check(self) -> None:
        """Raises TaskCancelled once the task is cancelled, RuntimeFailure once its time is up."""
        # Not left to Ray's interrupt alone: a process that inherited SIGINT ignored never receives it.
        if self.cancelled is not None and self.cancelled():
            raise TaskCancelled("the task was cancelled")
        if self.at is not None and time.monotonic() >= self.at:
            raise RuntimeFailure(TIMEOUT_ERROR)


class Output(Protocol):
    """A pipe the waiting thread reads while it waits (the shell runtime's ScriptOutput)."""

    def fileno(self) -> int: ...

    def pull(self) -> bool:
        """Reads what the pipe holds; False once it is at end-of-file."""
        ...


def wait_process(
    process: subprocess.Popen[bytes],
    deadline: Deadline,
    between: Callable[[], None],
    output: Output | None = None,
) -> int:
    """A process's exit code, waited for in short steps (a timeout or a cancel still gets in), calling
    `between` about every POLL_SECONDS (the task's progress file is read there). `output`, if given, is read
    whenever it has data meanwhile; what is left in it when the process exits is the caller's to read."""
    pidfd = _pidfd(process.pid)
    if pidfd is None:
        return _wait_polling(process, deadline, between, output)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if output is not None:
            poller.register(output.fileno(), select.POLLIN)
        last_between = time.monotonic()
        while True:
            deadline.check()
            events = poller.poll(max(0.05, deadline.remaining()) * 1000)
            if any(fd == pidfd for fd, _ in events):
                return process.wait()
            for fd, _ in events:  # only the output's: data, or its end
                if output is not None and not output.pull():
                    poller.unregister(fd)
            now = time.monotonic()
            if not events or now - last_between >= POLL_SECONDS:
                between()
                last_between = now
    finally:
        os.close(pidfd)


def _wait_polling(
    process: subprocess.Popen[bytes], deadline: Deadline, between: Callable[[], None], output: Output | None
) -> int:
    """wait_process where the kernel has no pidfds: the exit is polled (Popen.wait's own sleeps, up to 50 ms)."""
    last_between = time.monotonic()
    while True:
        deadline.check()
        step = max(0.05, deadline.remaining())
        if output is not None:
            if select.select([output], [], [], min(0.05, step))[0] and not output.pull():
                output = None
            code = process.poll()
            if code is not None:
                return code
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return process.wait(timeout=step)
        now = time.monotonic()
        if now - last_between >= POLL_SECONDS:
            between()
            last_between = now


def _pidfd(pid: int) -> int | None:
    """A descriptor that turns readable when `pid` exits (Linux 5.3+), None where there is none. Popen.wait's
    own timed wait polls with growing sleeps (up to 50 ms): a task of 3 ms was seen back after 6 to 9."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    with contextlib.suppress(OSError):  # no such process any more (reaped), or a kernel without pidfds
        return int(opener(pid))
    return None


def in_thread(fn: Callable[[], T], deadline: Deadline, name: str = "tork-runtime-call") -> T:
    """Runs a long blocking call (an image pull) in a helper thread and waits in short steps, so a timeout
    or a cancel still gets in. On either the call is abandoned, not stopped: it finishes on its own."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while thread.is_alive():
        deadline.check()
        thread.join(deadline.remaining())
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def shielded(fn: Callable[[], None], limit: float = 60.0) -> None:
    """Runs clean-up to its end even if another KeyboardInterrupt (a second cancel) arrives meanwhile; the
    interrupt is re-raised once the clean-up is done."""
    thread = threading.Thread(target=fn, name="tork-cleanup", daemon=True)
    thread.start()
    interrupted = False
    end = time.monotonic() + limit
    while thread.is_alive() and time.monotonic() < end:
        try:
            thread.join(POLL_SECONDS)
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
