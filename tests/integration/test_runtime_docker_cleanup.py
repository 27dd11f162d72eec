"""Nothing of ours is left in Docker whatever happens to a task: out of memory, timeout, cancel, a worker
killed mid-task. Through the whole engine, checked by the engine's scope label."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import LiveEngine
from tests.integration.test_runtime_docker import IMAGE, assert_clean, leftovers, run_job, running_task, task_log
from tests.integration.workers import TASK_TITLES
from tests.polling import poll_until


def test_out_of_memory_fails_the_task_saying_so(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: oom
tasks:
  - name: greedy
    image: {IMAGE}
    limits:
      memory: 20m
    run: head -c 200m /dev/zero | tail
"""
    job = run_job(live_engine, body)
    assert job["state"] == "FAILED"
    error = job["execution"][0]["error"]
    assert error.startswith("out of memory"), error
    assert "20MiB" in error and "137" in error
    assert job["error"] == error
    assert_clean(docker_client, live_engine)


def test_timeout_fails_the_task_and_removes_everything(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: timeout
tasks:
  - name: slow
    image: {IMAGE}
    timeout: 2s
    mounts:
      - type: volume
        target: /data
    run: sleep 60
"""
    began = time.monotonic()
    job = run_job(live_engine, body)
    assert job["state"] == "FAILED"
    assert "context deadline exceeded" in job["execution"][0]["error"]
    print(f"a 2s timeout ended the job (of a 60s sleep) after {time.monotonic() - began:.1f}s")
    assert_clean(docker_client, live_engine)


SLOW_WITH_EVERYTHING = f"""
name: long runner
tasks:
  - name: long
    image: {IMAGE}
    mounts:
      - type: volume
        target: /data
    sidecars:
      - name: helper
        image: {IMAGE}
        run: sleep 300
    run: |
      echo started
      echo 30 > $TORK_PROGRESS
      sleep 300
"""


def test_cancel_mid_run_logs_were_live_and_nothing_is_left(live_engine: LiveEngine, docker_client: Any) -> None:
    job_id = live_engine.submit(SLOW_WITH_EVERYTHING)["id"]
    task = running_task(live_engine, job_id)
    seen_running = time.monotonic()
    # Readable through the API while the task runs (its sleep outlasts any wait here; the cancel ends it).
    poll_until(lambda: "started" in task_log(live_engine, task["id"]), 60, "the first log line")
    print(f"first log line readable {time.monotonic() - seen_running:.1f}s after the task was seen RUNNING")
    progress = poll_until(lambda: live_engine.http.get(f"/tasks/{task['id']}").json().get("progress"), 60, "progress")
    assert progress == 30
    made = leftovers(docker_client, live_engine)
    assert len(made["containers"]) == 2 and len(made["volumes"]) == 1 and len(made["networks"]) == 1, made

    response = live_engine.http.put(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    job = live_engine.wait_for(job_id)
    assert job["state"] == "CANCELLED"
    assert job["execution"][0]["state"] == "CANCELLED"
    assert_clean(docker_client, live_engine)


def _parent(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        pid = _parent(pid)
        if pid == me:
            return True
    return False


def ray_task_workers() -> list[int]:
    """Ray worker processes of this session's cluster (our descendants) running Tork tasks right now: a `run_task`,
    or an executor (tests/integration/workers.py)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if title.startswith(TASK_TITLES) and _descends_from_us(int(entry.name)):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def test_a_worker_killed_mid_task_leaves_nothing(live_engine: LiveEngine, docker_client: Any) -> None:
    job_id = live_engine.submit(SLOW_WITH_EVERYTHING)["id"]
    task = running_task(live_engine, job_id)
    poll_until(lambda: "started" in task_log(live_engine, task["id"]), 60, "the task's container")
    workspace = Path(tempfile.gettempdir()).glob(f"tork-{task['id']}-*")
    assert list(workspace), "the task's host directory (mounted at /tork)"
    # Ours is the only task running once any earlier test's last task has wound down.
    workers = poll_until(lambda: (found := ray_task_workers()) and len(found) == 1 and found, 60, "one Ray task worker")
    os.kill(workers[0], signal.SIGKILL)

    job = live_engine.wait_for(job_id)
    assert job["state"] == "FAILED"
    assert job["execution"][0]["error"].startswith("task lost"), job["execution"][0]["error"]
    assert_clean(docker_client, live_engine)
    poll_until(lambda: not list(Path(tempfile.gettempdir()).glob(f"tork-{task['id']}-*")), 30, "workspace removed")
