"""The Ray worker processes of this test session that run a Tork task now, found by their process title."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import ray
from ray._private import ray_constants

# Ray titles a worker process `ray::<function>` while it runs that function (`ray::IDLE` between tasks).
TASK_TITLE = b"ray::run_task"


def _raylet_pid() -> int:
    """The raylet this session's driver started: the parent of its worker processes. Other Ray clusters on
    the machine (other test sessions) have their own raylets, so their workers are never ours."""
    node = ray._private.worker._global_node
    assert node is not None, "no local Ray node in this process"
    return int(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)


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
        if title.startswith(TASK_TITLE) and parent == raylet:
            pids.append(int(proc.name))
    return pids


def kill_task_workers() -> list[int]:
    """SIGKILLs every worker process running a Tork task now; returns their pids."""
    pids = task_worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids
