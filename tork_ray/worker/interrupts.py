"""Cancellation that holds however the engine was started: SIGINT handling restored, and Ray's cancel flag read."""

from __future__ import annotations

import logging
import signal
import threading

import ray

log = logging.getLogger(__name__)


def restore_sigint() -> bool:
    """Gives SIGINT back its Python handler (KeyboardInterrupt) when the process inherited it ignored; True if
    it did. A launcher that backgrounds the engine (`nohup make run &`, a script's `&`) starts it with SIGINT
    ignored, and every process it starts inherits that: Ray's workers, whose cancel is a simulated SIGINT
    (`_thread.interrupt_main`, a no-op while SIGINT is ignored), and a task's own processes, whose `trap` could
    not catch it. A handler, unlike SIG_IGN, is reset to the default on exec, so children start clean."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False  # only the main thread may set handlers; the cancel flag still stops the task
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True


def ray_cancel_requested() -> bool:
    """True once `ray.cancel` was called on the Ray task this worker runs now. Ray sets this flag before it
    tries to interrupt the task, whatever the process's signal dispositions; the runtime's waits read it, so
    a cancel lands even where the interrupt cannot."""
    # A private Ray API (pinned version); should it move, cancel falls back on the interrupt alone, with a warning.
    is_canceled = getattr(getattr(ray._private.worker.global_worker, "core_worker", None), "is_canceled", None)
    if is_canceled is None:  # not in a connected Ray worker, or a Ray whose internals moved
        _warn_once()
        return False
    return bool(is_canceled())


_warned = threading.Event()


def _warn_once() -> None:
    if not _warned.is_set():
        _warned.set()
        log.warning("Ray's cancel flag is not readable here: cancel relies on the interrupt alone")
