"""Run as a script (argument: the URL of a fresh PostgreSQL database): a queue node dies with tasks running on
it, then a new node serving those queues joins; two engines side by side, one on SQLite and one on PostgreSQL.
Prints a JSON report of every job per store; tests/e2e/test_node_death.py checks it. A separate process, because a test
session already has its own Ray (two clusters in one process fail)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
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
from tork_ray.settings import DatastoreSettings, RaySettings, Settings
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store, open_store

# One engine per store, side by side on one cluster (so one node death checks both): each its own coordinator
# (namespace) and its own queue, two slots each on the node that dies and on the node that joins later.
STORES = {"sqlite": "alpha", "postgres": "beta"}
QUEUES = {f"queue:{queue}": 2 for queue in STORES.values()}
# Each job is one gated task on its engine's queue (two slots): the first two run when the node dies, one retried
# by its rules and one not; the other two wait (in the backlog, or queued in the node's executor) and must run
# once, on the node that joins later.
# The lost attempts' containers outlive the dead node's Ray processes (their watchdogs die with the node): the
# coordinator removes them when the host serves again (coordinator/leftovers.py).
JOBS: dict[str, dict[str, int] | None] = {"retried": {"limit": 1}, "alone": None, "waiting 1": None, "waiting 2": None}
WAITING = ("waiting 1", "waiting 2")


def document(name: str, retry: dict[str, int] | None, queue: str) -> bytes:
    task: dict[str, Any] = {
        "name": "gated",
        "image": IMAGE,
        "queue": queue,
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


@dataclass
class Side:
    """One engine of the run: its store kind, queue, coordinator, store and jobs."""

    kind: str
    queue: str
    namespace: str
    coordinator: Any
    store: Store
    ids: dict[str, str] = field(default_factory=dict)

    def jobs(self) -> dict[str, Any]:
        return {name: _job(self.store, job_id) for name, job_id in self.ids.items()}


def _start_side(kind: str, address: str, postgres_url: str) -> Side:
    namespace = f"tork_node_death_{kind}_{uuid.uuid4().hex[:6]}"
    datastore = (
        DatastoreSettings(type="postgres", postgres_dsn=postgres_url) if kind == "postgres" else DatastoreSettings()
    )
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()),
        queues={},
        ray=RaySettings(address=address, namespace=namespace, coordinator_name=f"coordinator-{kind}"),
        datastore=datastore,
    )
    return Side(kind, STORES[kind], namespace, start_coordinator(settings), open_store(settings))


def main(postgres_url: str) -> dict[str, Any]:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": head_resources()}
    )
    cluster.wait_for_nodes()
    client = docker.from_env()
    ray.init(address=cluster.address, namespace="tork_node_death")
    try:
        sides = [_start_side(kind, cluster.address, postgres_url) for kind in STORES]
        # Added once the coordinators live on the head: the node that dies takes only tasks along.
        doomed = cluster.add_node(num_cpus=1, resources=QUEUES)
        cluster.wait_for_nodes()
        # The two that run are submitted first and seen running, then the two that wait: which tasks hold the
        # slots is then certain (an executor takes a queue's next tasks before its slots free, so tasks sent
        # together may start in any order).
        for side in sides:
            side.ids = {
                name: _submit(side.coordinator, document(name, retry, side.queue))
                for name, retry in JOBS.items()
                if name not in WAITING
            }
        for side in sides:
            for name in ("retried", "alone"):
                poll(
                    lambda s=side, n=name: running_containers(client, s.ids[n]),
                    90,
                    f"{side.kind}: {name} running",
                    side.jobs,
                )
            side.ids |= {name: _submit(side.coordinator, document(name, JOBS[name], side.queue)) for name in WAITING}
            poll(
                lambda s=side: all(task_states(s.store, s.ids[n]) == ["SCHEDULED"] for n in WAITING),
                30,
                "the backlog",
                side.jobs,
            )

        cluster.remove_node(doomed, allow_graceful=False)  # SIGKILL: raylet, workers, all at once
        # No node serves the queues now: the retries and the waiting tasks sit in the coordinators' backlogs.
        backlogs = {
            side.kind: poll(
                lambda s=side: _backlog(s.coordinator, s.queue),
                60,
                f"{side.kind}: the backlog of a queue no node serves",
                lambda s=side: (ray.get(s.coordinator.queues.remote()), s.jobs()),
            )
            for side in sides
        }
        fresh = cluster.add_node(num_cpus=1, resources=QUEUES)
        every = [(side, job_id) for side in sides for job_id in side.ids.values()]

        def finished() -> bool:
            for _side, job_id in every:
                open_gates(client, job_id)
            return all(s.store.get_job(i).state in ("COMPLETED", "FAILED", "CANCELLED") for s, i in every)  # type: ignore[union-attr]

        poll(finished, 120, "every job to finish", lambda: [side.jobs() for side in sides])
        nodes = {"doomed": doomed.node_id, "fresh": fresh.node_id}
        return {side.kind: _report(side, client, nodes, backlogs[side.kind]) for side in sides}
    finally:
        ray.shutdown()
        cluster.shutdown()


def _report(side: Side, client: Any, nodes: dict[str, str], backlog: dict[str, int]) -> dict[str, Any]:
    report: dict[str, Any] = {"nodes": nodes, "backlog": backlog, "jobs": side.jobs()}
    scope = {"label": f"{LABEL_SCOPE}={side.namespace}"}
    # The join sweep removes the lost attempts' containers within a few seconds: wait for none (what is left at
    # the deadline is reported, and fails the test).
    left: list[list[str]] = [[]]

    def none_left() -> list[str] | None:
        left[0] = [c.name or "" for c in client.containers.list(all=True, filters=scope)]
        return None if left[0] else ["none"]

    try:
        report["containers"] = poll(none_left, 60, "the run's containers to be removed")
    except SystemExit:
        report["containers"] = left[0]
    return report


def _submit(coordinator: Any, body: bytes) -> str:
    summary: dict[str, Any] = ray.get(coordinator.accept.remote(parse_job(body, "application/json")))
    return str(summary["id"])


def _backlog(coordinator: Any, queue: str) -> dict[str, int] | None:
    info = {q.name: q for q in ray.get(coordinator.queues.remote())}.get(queue)
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
    json.dump(main(sys.argv[1]), sys.stdout)
