"""Deadlines and interruptible waits: a cancel or a timeout lands only between short steps, so nothing blocks long."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TypeVar

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


def wait_process(process: subprocess.Popen[bytes], deadline: Deadline, between: Callable[[], None]) -> int:
    """A process's exit code, waited for in short steps (a timeout or a cancel still gets in), calling
    `between` after each step (the task's progress file is read there)."""
    pidfd = _pidfd(process.pid)
    try:
        while True:
            deadline.check()
            if pidfd is not None:
                if _exited(pidfd, max(0.05, deadline.remaining())):
                    return process.wait()
                between()
                continue
            try:
                return process.wait(timeout=max(0.05, deadline.remaining()))
            except subprocess.TimeoutExpired:
                between()
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    """A descriptor that turns readable when `pid` exits (Linux 5.3+), None where there is none. Popen.wait's
    own timed wait polls with growing sleeps (up to 50 ms): a task of 3 ms was seen back after 6 to 9."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    with contextlib.suppress(OSError):  # no such process any more (reaped), or a kernel without pidfds
        return int(opener(pid))
    return None


def _exited(pidfd: int, seconds: float) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


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
