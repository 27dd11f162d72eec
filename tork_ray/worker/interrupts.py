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
    ignored, and every process it starts inherits that: Ray's own processes, the API's, and a task's own
    processes, whose `trap` could not catch it (Ray's workers set their own handler: see defer_interrupts).
    A handler, unlike SIG_IGN, is reset to the default on exec, so children start clean."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False  # only the main thread may set handlers; the cancel flag still stops the task
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True


# Ray's setup hook for every worker process of the engine's Ray job (see worker_runtime_env).
SETUP_HOOK = "tork_ray.worker.interrupts.defer_interrupts"


def worker_runtime_env() -> dict[str, str]:
    """The runtime_env of the engine's Ray job: each worker process defers interrupts before it runs anything."""
    return {"worker_process_setup_hook": SETUP_HOOK}


def _deferred_interrupt(signum: int, frame: object) -> None:
    """Ray's cancel, noted and not raised: the cancel flag it sets lands at the runtime's next wait."""
    log.debug("interrupt deferred to the task's next safe point")


def defer_interrupts() -> bool:
    """Makes a worker process stop only where it is safe to: Ray's cancel is a simulated SIGINT, raised as
    KeyboardInterrupt at whatever line runs, and one that lands in an import (a fresh worker still loading the
    task's modules) leaves half-made modules behind: every later task on that worker then fails in odd ways.
    With this handler the interrupt raises nothing; the cancel flag Ray sets with it is read by every wait of
    the runtime (Deadline.check), which stops the task there, removing what it started. Run in each worker
    process before any task (Ray's worker_process_setup_hook) and again by run_task; True if it changed the
    handler. Like any handler (unlike SIG_IGN) it is reset to the default on exec, so a task's processes start
    clean."""
    if threading.current_thread() is not threading.main_thread():
        return False  # only the main thread may set handlers; the cancel flag still stops the task
    if signal.getsignal(signal.SIGINT) is _deferred_interrupt:
        return False
    signal.signal(signal.SIGINT, _deferred_interrupt)
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
