"""`tork-ray worker --address HEAD --queue joined=1` as a user would run it on another host, against a running
cluster and coordinator: a job on queue `joined` must run on that node, and the node must leave when the command
is stopped. Run by tests/e2e/multinode.py on its cluster (one cluster start for both scenarios); checked by
tests/e2e/test_multinode.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ray

from tork_ray.settings import Settings
from tork_ray.spec.parse import parse_job

IMAGE = os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest")
TORK_RAY = str(Path(sys.executable).parent / "tork-ray")
QUEUE = "joined"


def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        if time.monotonic() >= deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)
    return found


def joined_node() -> str | None:
    nodes = [n for n in ray.nodes() if n["Alive"] and f"queue:{QUEUE}" in n["Resources"]]
    return str(nodes[0]["NodeID"]) if nodes else None


def join_and_leave(address: str, settings: Settings, coordinator: Any, store: Any) -> dict[str, Any]:
    """On a running cluster and coordinator (tests/e2e/multinode.py's): `tork-ray worker` joins with queue
    `joined`, that queue's job runs on the new node, and the node leaves when the command is stopped."""
    log = Path(settings.data_dir) / "worker.log"
    command = [TORK_RAY, "worker", "--address", address, "--queue", f"{QUEUE}=1"]
    worker = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        node_id = until(joined_node, 120, "the worker node to join")
        document = {
            "name": "on the joined node",
            "tasks": [{"name": "t", "image": IMAGE, "queue": QUEUE, "run": "true"}],
        }
        job_id = ray.get(coordinator.accept.remote(parse_job(json.dumps(document).encode(), "application/json")))["id"]
        job = until(lambda: _ended(store, job_id), 120, "the job to end")
        task_nodes = sorted({t.node_id or "" for t in store.job_tasks(job_id)})
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        left = until(lambda: True if joined_node() is None else None, 120, "the worker node to leave")
        return {"node": node_id, "state": job.state, "task_nodes": task_nodes, "left": left, "exit": worker.returncode}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


def _ended(store: Any, job_id: str) -> Any:
    job = store.get_job(job_id)
    return job if job is not None and job.state in ("COMPLETED", "FAILED", "CANCELLED") else None
