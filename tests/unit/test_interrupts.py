"""SIGINT handling restored for a process started with it ignored, and a Deadline's cancel probe."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.waiting import Deadline, TaskCancelled
from tork_ray.worker.interrupts import restore_sigint

SIGINT_BIT = 1 << (2 - 1)  # SIGINT is signal 2; /proc/<pid>/status masks have bit (n - 1) for signal n

CHILD = textwrap.dedent(
    """
    import signal, subprocess, sys
    from tork_ray.worker.interrupts import restore_sigint
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "started as a background launcher starts it"
    restored = restore_sigint()
    handled = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # A process it starts in turn (a Ray worker, a task's script): does it still ignore SIGINT?
    status = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True).stdout
    ignored = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    print(restored, handled, ignored)
    """
)


def test_a_process_started_with_sigint_ignored_gets_it_back_for_itself_and_its_children() -> None:
    launcher = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher, sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    )
    restored, handled, ignored = done.stdout.split()
    assert (restored, handled) == ("True", "True")
    assert int(ignored, 16) & SIGINT_BIT == 0


def test_restore_leaves_a_handled_sigint_alone() -> None:
    def handler(signum: int, frame: object) -> None:
        pass

    saved = signal.signal(signal.SIGINT, handler)
    try:
        assert restore_sigint() is False
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, saved)


def test_a_cancel_probe_ends_every_wait_as_a_keyboard_interrupt() -> None:
    flag = {"cancelled": False}
    deadline = Deadline(None, lambda: flag["cancelled"])
    deadline.check()
    flag["cancelled"] = True
    with pytest.raises(KeyboardInterrupt) as raised:  # what Ray's own cancel raises: one clean-up path
        deadline.check()
    assert isinstance(raised.value, TaskCancelled)


def test_a_cancel_wins_over_a_timeout_at_the_same_check() -> None:
    cancelled, expired = Deadline(60, lambda: True), Deadline(60, lambda: False)
    cancelled.at = expired.at = time.monotonic() - 1  # both past their time
    with pytest.raises(TaskCancelled):
        cancelled.check()
    with pytest.raises(RuntimeFailure):
        expired.check()
