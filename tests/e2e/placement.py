"""On a head (with the head resource) and a worker node: the coordinator is started from a task on the worker,
the API deployed on Serve with two replicas; where each lands, and where the coordinator comes back after it is
killed. Run by tests/e2e/cluster_mode.py on its cluster (one cluster start for both); checked by
tests/e2e/test_cluster_mode.py."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import ray
from ray import serve
from ray._private import state  # the GCS actor table, no dashboard needed
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tests.engine import free_port
from tests.polling import poll_until
from tork_ray.api.serve import APP_NAME, deploy
from tork_ray.coordinator.actor import start_coordinator
from tork_ray.settings import RaySettings, Settings


def actor_nodes(class_prefix: str) -> list[str]:
    return sorted(
        str(a["Address"]["NodeID"])
        for a in state.actors().values()
        if str(a.get("ActorClassName", "")).startswith(class_prefix) and a["State"] == "ALIVE"
    )


@ray.remote(num_cpus=0)
def start_from_here(settings: Settings) -> str:
    # Created from a process on the worker: without the head resource Ray would place it right here.
    start_coordinator(settings)
    return str(ray.get_runtime_context().get_node_id())


def coordinator_node(settings: Settings) -> tuple[str, int] | None:
    """(node id, restarts so far) of the live coordinator actor, None while it is not alive."""
    handle = ray.get_actor(settings.ray.coordinator_name, namespace=settings.ray.namespace)
    info = state.actors(actor_id=handle._actor_id.hex())
    if info.get("State") != "ALIVE":
        return None
    return str(info["Address"]["NodeID"]), int(info["NumRestarts"])


def check_placement(cluster: Cluster, worker: Any) -> dict[str, Any]:
    """On a cluster of a head and `worker` whose driver is not connected yet, and where Serve is not running."""
    namespace = f"tork_place_{uuid.uuid4().hex[:6]}"
    port = free_port()
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()), queues={}, ray=RaySettings(address=cluster.address, namespace=namespace)
    )
    ray.init(address=cluster.address, namespace=namespace, configure_logging=False, log_to_driver=False)
    try:
        pinned = NodeAffinitySchedulingStrategy(worker.node_id, soft=False)
        started_on = ray.get(start_from_here.options(scheduling_strategy=pinned).remote(settings))
        deploy(settings, host="127.0.0.1", port=port, replicas=2)
        before = poll_until(lambda: coordinator_node(settings), 60, "the coordinator alive")
        report: dict[str, Any] = {
            "head": cluster.head_node.node_id,
            "worker": worker.node_id,
            "startedFrom": started_on,
            "coordinator": before[0],
            "replicas": actor_nodes(f"ServeReplica:{APP_NAME}"),
        }
        handle = ray.get_actor(settings.ray.coordinator_name, namespace=namespace)
        killed = time.monotonic()
        ray.kill(handle, no_restart=False)
        after = poll_until(
            lambda: (n := coordinator_node(settings)) and n[1] > before[1] and n, 60, "the coordinator restarted"
        )
        report["restartSeconds"] = round(time.monotonic() - killed, 2)
        report["restartedOn"] = after[0]
        report["health"] = poll_until(
            lambda: _health(port) == "UP" and "UP", 60, "the API through Serve answering UP after the restart"
        )
        return report
    finally:
        serve.shutdown()
        ray.shutdown()


def _health(port: int) -> str | None:
    try:
        return str(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json().get("status"))
    except (httpx.HTTPError, ValueError):
        return None
