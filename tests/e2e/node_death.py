"""Run as a script: a queue node dies with tasks running on it, then a new node serving that queue joins.
Prints a JSON report of every job; tests/e2e/test_node_death.py checks it. A separate process, because a test
session already has its own Ray (two clusters in one process fail)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import ray
from ray.cluster_utils import Cluster

from tests.e2e.multinode import IMAGE
from tests.integration.gates import GATED, open_gates, running_containers
from tork_ray.coordinator.actor import start_coordinator
from tork_ray.placement import head_resources
from tork_ray.runtime.base import LABEL_SCOPE
from tork_ray.settings import RaySettings, Settings
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store, open_store

QUEUE = {"queue:alpha": 2}
# Each job is one gated task on queue alpha (two slots): the first two run when the node dies, one retried by
# its rules and one not; the other two wait in the backlog and must run once, on the node that joins later.
# The lost attempts' containers outlive the dead node's Ray processes (their watchdogs die with the node): the
# coordinator removes them when the host serves again (coordinator/leftovers.py).
JOBS: dict[str, dict[str, int] | None] = {"retried": {"limit": 1}, "alone": None, "waiting 1": None, "waiting 2": None}


def document(name: str, retry: dict[str, int] | None) -> bytes:
    task: dict[str, Any] = {
        "name": "gated",
        "image": IMAGE,
        "queue": "alpha",
        "run": f"{GATED}; echo -n ok > $TORK_OUTPUT",
        "networks": ["none"],  # needs none, so depends on none (a Docker bridge another test may be resetting)
    }
    if retry is not None:
        task["retry"] = retry
    return json.dumps({"name": name, "tasks": [task]}).encode()


def poll(check: Any, timeout: float, what: str, seen: Any = None) -> Any:
    """tests/polling.py's poll_until for this script: its failure says what was last `seen()`."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}; last seen: {seen() if seen else value}")
        time.sleep(0.1)
    return value


def task_states(store: Store, job_id: str) -> list[str]:
    return [str(t.state) for t in store.job_tasks(job_id)]


def main() -> dict[str, Any]:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": head_resources()}
    )
    cluster.wait_for_nodes()
    namespace = f"tork_node_death_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()), queues={}, ray=RaySettings(address=cluster.address, namespace=namespace)
    )
    client = docker.from_env()
    ray.init(address=cluster.address, namespace=namespace)
    try:
        coordinator = start_coordinator(settings)
        # Added once the coordinator lives on the head: the node that dies takes only tasks along.
        doomed = cluster.add_node(num_cpus=1, resources=QUEUE)
        cluster.wait_for_nodes()
        store = open_store(settings)
        ids = {name: _submit(coordinator, document(name, retry)) for name, retry in JOBS.items()}

        def jobs() -> dict[str, Any]:
            return {name: _job(store, job_id) for name, job_id in ids.items()}

        for name in ("retried", "alone"):
            poll(lambda name=name: running_containers(client, ids[name]), 90, f"{name} running", jobs)
        waiting = ("waiting 1", "waiting 2")
        poll(lambda: all(task_states(store, ids[n]) == ["SCHEDULED"] for n in waiting), 30, "the backlog", jobs)

        cluster.remove_node(doomed, allow_graceful=False)  # SIGKILL: raylet, workers, all at once
        # No node serves alpha now: the retry and the two waiting tasks sit in the coordinator's backlog.
        backlog = poll(
            lambda: _backlog(coordinator),
            60,
            "the backlog of a queue no node serves",
            lambda: (ray.get(coordinator.queues.remote()), jobs()),
        )
        fresh = cluster.add_node(num_cpus=1, resources=QUEUE)

        def finished() -> bool:
            for job_id in ids.values():
                open_gates(client, job_id)
            return all(store.get_job(i).state in ("COMPLETED", "FAILED", "CANCELLED") for i in ids.values())  # type: ignore[union-attr]

        poll(finished, 120, "every job to finish", jobs)
        report: dict[str, Any] = {"nodes": {"doomed": doomed.node_id, "fresh": fresh.node_id}, "backlog": backlog}
        report["jobs"] = jobs()
        scope = {"label": f"{LABEL_SCOPE}={namespace}"}
        # The join sweep removes the lost attempts' containers within a few seconds: wait for none (what is
        # left at the deadline is reported, and fails the test).
        left: list[list[str]] = [[]]

        def none_left() -> list[str] | None:
            left[0] = [c.name or "" for c in client.containers.list(all=True, filters=scope)]
            return None if left[0] else ["none"]

        try:
            report["containers"] = poll(none_left, 60, "the run's containers to be removed")
        except SystemExit:
            report["containers"] = left[0]
        return report
    finally:
        ray.shutdown()
        cluster.shutdown()


def _submit(coordinator: Any, body: bytes) -> str:
    summary: dict[str, Any] = ray.get(coordinator.accept.remote(parse_job(body, "application/json")))
    return str(summary["id"])


def _backlog(coordinator: Any) -> dict[str, int] | None:
    info = {q.name: q for q in ray.get(coordinator.queues.remote())}.get("alpha")
    # Ray's resource view outlives a dead node by a moment, so the coordinator may hand a task or two to Ray
    # (which holds them until a node serves the queue) instead of keeping them in its backlog: both wait.
    if info is None or info.subscribers or info.size + info.unacked != 3:
        return None
    return {"size": info.size, "subscribers": info.subscribers, "running": info.unacked}


def _job(store: Store, job_id: str) -> dict[str, Any]:
    job = store.get_job(job_id)
    assert job is not None
    tasks = [
        {"state": str(t.state), "error": t.error, "node": t.node_id, "redelivered": t.redelivered, "result": t.result}
        for t in store.job_tasks(job_id)
    ]
    return {"state": str(job.state), "error": job.error, "tasks": tasks}


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
