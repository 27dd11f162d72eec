"""Run as a script: a three-node Ray cluster (head + two queue nodes), the coordinator, and jobs routed by
queue; then `tork-ray worker` joins that cluster and leaves (tests/e2e/worker_join.py). Prints a JSON report;
tests/e2e/test_multinode.py checks it. A separate process, because a test session
already has its own Ray (two clusters in one process fail)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from tests.e2e.worker_join import join_and_leave
from tork_ray.coordinator.actor import start_coordinator
from tork_ray.placement import head_resources
from tork_ray.settings import RaySettings, Settings
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store, open_store

IMAGE = os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest")


def job(queue: str, count: int) -> bytes:
    tasks = [{"name": f"{queue}-{i}", "image": IMAGE, "queue": queue, "run": "sleep 1"} for i in range(count)]
    parallel = {"name": f"on {queue}", "parallel": {"tasks": tasks}}
    return json.dumps({"name": f"routed to {queue}", "tasks": [parallel]}).encode()


def wait_terminal(store: Store, job_id: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = store.get_job(job_id)
        if stored is not None and stored.state in ("COMPLETED", "FAILED", "CANCELLED"):
            return str(stored.state)
        time.sleep(0.1)
    return "TIMEOUT"


def main() -> dict[str, Any]:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": head_resources()}
    )
    alpha = cluster.add_node(num_cpus=1, resources={"queue:alpha": 1})
    beta = cluster.add_node(num_cpus=1, resources={"queue:beta": 2})
    cluster.wait_for_nodes()
    data_dir = Path(tempfile.mkdtemp())
    namespace = f"tork_multi_{uuid.uuid4().hex[:6]}"
    settings = Settings(data_dir=data_dir, queues={}, ray=RaySettings(address=cluster.address, namespace=namespace))
    ray.init(address=cluster.address, namespace=namespace)
    try:
        coordinator = start_coordinator(settings)
        store = open_store(settings)
        ids = {
            q: ray.get(coordinator.accept.remote(parse_job(job(q, 3), "application/json")))["id"]
            for q in ("alpha", "beta")
        }
        states = {q: wait_terminal(store, job_id) for q, job_id in ids.items()}
        report: dict[str, Any] = {"states": states, "nodes": {"alpha": alpha.node_id, "beta": beta.node_id}}
        for queue, job_id in ids.items():
            children = [t for t in store.job_tasks(job_id) if t.parent_id]
            report[queue] = {
                "nodes": sorted({t.node_id or "" for t in children}),
                "spans": [
                    (t.started_at.timestamp(), t.completed_at.timestamp())
                    for t in children
                    if t.started_at and t.completed_at
                ],
            }
        orphan = ray.get(coordinator.accept.remote(parse_job(job("nowhere", 1), "application/json")))["id"]
        queues = {q.name: q for q in ray.get(coordinator.queues.remote())}
        report["nowhere"] = {
            "size": queues["nowhere"].size,
            "subscribers": queues["nowhere"].subscribers,
            "state": store.get_job(orphan).state if store.get_job(orphan) else None,
        }
        # The same cluster and coordinator for `tork-ray worker` joining and leaving (one cluster start, not two).
        report["joined"] = join_and_leave(cluster.address, settings, coordinator, store)
        return report
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
