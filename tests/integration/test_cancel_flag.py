"""Ray's cancel reaches a task whose worker ignores SIGINT: the runtime's waits read Ray's cancel flag."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import ray
from ray.exceptions import TaskCancelledError

from tests.e2e.test_cancel_sigint_ignored import group_alive
from tests.engine import LiveEngine
from tests.integration.test_runtime_shell import SHELL, Recorder, request, written
from tests.polling import poll_until
from tork_ray.worker.interrupts import _deferred_interrupt, ray_cancel_requested
from tork_ray.worker.task import execute


@ray.remote(num_cpus=0, max_retries=0)
def shell_task_ignoring_sigint(pid_file: str) -> dict[str, str]:
    """A worker as a launcher that ignored SIGINT leaves it, running a shell task the way run_task does."""
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return execute(request(f"echo $$ > {pid_file}; sleep 300"), Recorder(), SHELL, "node")
    finally:
        signal.signal(signal.SIGINT, saved)  # this worker process serves later tests' tasks too


def test_a_cancel_lands_in_a_worker_that_ignores_sigint(live_engine: LiveEngine, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    ref = shell_task_ignoring_sigint.remote(str(pid_file))
    poll_until(lambda: written(pid_file), 60, "the task's script to start")
    pgid = int(pid_file.read_text())
    ray.cancel(ref)
    poll_until(lambda: not group_alive(pgid), 30, "the cancelled script's process group killed")
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)


@ray.remote(num_cpus=0, max_retries=0, max_calls=1)
def interrupted_while_importing() -> tuple[bool, bool, bool]:
    """A fresh worker (max_calls=1) whose first task gets Ray's interrupt half-way through an import: what a
    cancel of a task still loading its modules does. Was the handler set before the task ran, did the import
    complete, is the cancel flag clear outside a cancel?"""
    deferred_from_the_start = signal.getsignal(signal.SIGINT) is _deferred_interrupt
    sys.modules.pop("tests.integration.slow_import", None)
    imported = True
    try:
        import tests.integration.slow_import  # noqa: F401  raises SIGINT in its middle
    except KeyboardInterrupt:
        imported = False
    return deferred_from_the_start, imported, ray_cancel_requested()


def test_an_interrupt_never_lands_in_the_middle_of_a_workers_import(live_engine: LiveEngine) -> None:
    assert ray.get(interrupted_while_importing.remote(), timeout=60) == (True, True, False)
