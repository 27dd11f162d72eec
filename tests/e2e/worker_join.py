"""Run as a script: a Ray cluster of its own (a head that runs no tasks), then `tork-ray worker --address HEAD
--queue joined=1` as a user would run it on another host; a job on queue `joined` must run on that node, and
the node must leave when the command is stopped. Prints a JSON report; tests/e2e/test_worker_join.py checks it.
A separate process, because a test session already has its own Ray (two clusters in one process fail)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from tork_ray.coordinator.actor import start_coordinator
from tork_ray.placement import head_resources
from tork_ray.settings import RaySettings, Settings
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import open_store

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


def main() -> dict[str, Any]:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": head_resources()}
    )
    namespace = f"tork_join_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()), queues={}, ray=RaySettings(address=cluster.address, namespace=namespace)
    )
    log = Path(settings.data_dir) / "worker.log"
    command = [TORK_RAY, "worker", "--address", cluster.address, "--queue", f"{QUEUE}=1"]
    worker = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    ray.init(address=cluster.address, namespace=namespace, log_to_driver=False)
    try:
        node_id = until(joined_node, 120, "the worker node to join")
        coordinator = start_coordinator(settings)
        store = open_store(settings)
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
        ray.get(coordinator.shutdown.remote(), timeout=30)
        return {"node": node_id, "state": job.state, "task_nodes": task_nodes, "left": left, "exit": worker.returncode}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        ray.shutdown()
        cluster.shutdown()


def _ended(store: Any, job_id: str) -> Any:
    job = store.get_job(job_id)
    return job if job is not None and job.state in ("COMPLETED", "FAILED", "CANCELLED") else None


if __name__ == "__main__":
    print(json.dumps(main()))
