"""The Ray worker processes of this test session that run a Tork task now, found by their process title."""

from __future__ import annotations

import os
import signal
from pathlib import Path

# Ray titles a worker process `ray::<function>` while it runs that function (`ray::IDLE` between tasks), and an
# actor's process `ray::<class>` for its life: a Tork task runs in a `run_task` (worker.executor = task) or on
# its queue's QueueExecutor (worker.executor = node, the default), which runs every task of that queue there.
TASK_TITLES = (b"ray::run_task", b"ray::QueueExecutor")


def _raylet_pid() -> int:
    """The raylet this session's driver started (standalone's local node, tork_ray/local_ray.py): a child of this
    process, and the parent of its worker processes. Other Ray clusters on the machine (other test sessions)
    have their own raylets, so their workers are never ours."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            command = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:  # gone meanwhile
            continue
        if parent == me and command.endswith(b"/raylet"):
            return int(proc.name)
    raise AssertionError("no Ray node started by this process: no raylet among its children")


def task_worker_pids() -> list[int]:
    raylet = str(_raylet_pid())
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes()
            parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:  # gone meanwhile
            continue
        if title.startswith(TASK_TITLES) and parent == raylet:
            pids.append(int(proc.name))
    return pids


def kill_task_workers() -> list[int]:
    """SIGKILLs every worker process running a Tork task now (and every executor, busy or not); their pids."""
    pids = task_worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids
