"""Ray's cancel reaches a task whose worker ignores SIGINT: the runtime's waits read Ray's cancel flag."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.exceptions import TaskCancelledError

from tests.e2e.test_cancel_sigint_ignored import group_alive
from tests.engine import LiveEngine
from tests.integration.test_runtime_shell import SHELL, Recorder, request, written
from tests.polling import poll_until
from tork_ray.worker.interrupts import ray_cancel_requested, restore_sigint
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


@ray.remote(num_cpus=0, max_retries=0)
def sigint_in_worker() -> tuple[bool, bool, Any]:
    """What run_task's first line does in a worker that inherited SIGINT ignored, and the flag outside a cancel."""
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restored = restore_sigint()
        return restored, ray_cancel_requested(), signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, saved)


def test_a_worker_restores_sigint_and_reads_no_cancel_by_default(live_engine: LiveEngine) -> None:
    assert ray.get(sigint_in_worker.remote(), timeout=60) == (True, False, True)
