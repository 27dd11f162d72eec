"""Nodes as Tork shows them: the Ray nodes that serve queues, with a heartbeat probe for CPU and liveness."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tork_ray import __version__
from tork_ray.coordinator.dispatch import QUEUE_RESOURCE_PREFIX

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 10.0
# Tork: a node whose last heartbeat is older than this is not listed (and not counted online) at all.
FORGET_SECONDS = 300.0
# A live Ray node whose probe has not answered for this long is DOWN (Tork: its health check failed).
STALE_SECONDS = 3 * HEARTBEAT_SECONDS


@ray.remote(num_cpus=0, max_retries=0)
def probe_node() -> dict[str, Any]:
    """Runs on one node: its host name, whole-host CPU use over 0.2 s, when its raylet started, our version."""
    import psutil  # a dependency of Ray itself

    try:
        # Ray worker processes are children of their node's raylet, so its start is the node's start.
        started: float | None = psutil.Process(os.getppid()).create_time()
    except psutil.Error:
        started = None
    return {
        "hostname": socket.gethostname(),
        "cpuPercent": float(psutil.cpu_percent(interval=0.2)),
        "startedAt": started,
        "version": __version__,
    }


@dataclass
class NodeInfo:
    id: str
    name: str
    hostname: str
    port: int | None
    status: str  # UP | DOWN | OFFLINE
    queues: dict[str, int]
    task_count: int
    version: str
    cpu_percent: float | None = None
    started_at: datetime | None = None
    last_heartbeat_at: datetime | None = None


@dataclass
class _Beat:
    at: float  # time.time() of the last answer
    probe: dict[str, Any] = field(default_factory=dict)


def queue_slots(resources: dict[str, float]) -> dict[str, int]:
    return {
        name.removeprefix(QUEUE_RESOURCE_PREFIX): int(amount)
        for name, amount in resources.items()
        if name.startswith(QUEUE_RESOURCE_PREFIX)
    }


class NodeMonitor:
    """Probes every live queue node each HEARTBEAT_SECONDS (started by the first question, then in the
    background) and answers from the last beats, so GET /nodes never waits on a busy node."""

    def __init__(self) -> None:
        self._beats: dict[str, _Beat] = {}
        # When this monitor first listed each node: its startedAt until a probe answers (Tork always sends one,
        # and tork-web's Nodes page fails on a node without it).
        self._first_seen: dict[str, float] = {}
        self._loop: asyncio.Task[None] | None = None

    async def nodes(self, running_by_node: dict[str, int]) -> list[NodeInfo]:
        if self._loop is None:
            await self.refresh()
            self._loop = asyncio.get_running_loop().create_task(self._beat_loop())
        now = time.time()
        listed = [
            self._info(node, running_by_node, now)
            for node in ray.nodes()
            if queue_slots(node.get("Resources", {})) and self._listable(node, now)
        ]
        return sorted(listed, key=lambda info: (info.name, info.id))

    def _listable(self, node: dict[str, Any], now: float) -> bool:
        beat = self._beats.get(node["NodeID"])
        if node.get("Alive"):
            return True
        return beat is not None and now - beat.at < FORGET_SECONDS

    def _info(self, node: dict[str, Any], running: dict[str, int], now: float) -> NodeInfo:
        beat = self._beats.get(node["NodeID"])
        probe = beat.probe if beat else {}
        if not node.get("Alive"):
            status = "OFFLINE"
        elif beat is None or now - beat.at > STALE_SECONDS:
            status = "DOWN"
        else:
            status = "UP"
        started = probe.get("startedAt") or self._first_seen.setdefault(node["NodeID"], now)
        return NodeInfo(
            id=node["NodeID"],
            name=str(node.get("NodeName") or node.get("NodeManagerAddress") or node["NodeID"]),
            hostname=str(probe.get("hostname") or node.get("NodeManagerHostname") or ""),
            port=node.get("NodeManagerPort"),
            status=status,
            queues=queue_slots(node.get("Resources", {})),
            task_count=running.get(node["NodeID"], 0),
            version=str(probe.get("version") or __version__),
            cpu_percent=probe.get("cpuPercent", 0.0),  # 0 until a probe answers, as Tork's zero value
            started_at=datetime.fromtimestamp(started, UTC),
            last_heartbeat_at=datetime.fromtimestamp(beat.at, UTC) if beat else None,
        )

    async def refresh(self) -> None:
        live = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and queue_slots(n.get("Resources", {}))]
        for node_id, probe in await asyncio.gather(*(self._probe(node_id) for node_id in live)):
            if probe is not None:
                self._beats[node_id] = _Beat(time.time(), probe)

    async def _probe(self, node_id: str) -> tuple[str, dict[str, Any] | None]:
        ref = probe_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()

        async def answer() -> dict[str, Any]:
            return await ref

        try:
            return node_id, await asyncio.wait_for(answer(), PROBE_TIMEOUT_SECONDS)
        except (TimeoutError, RayError) as exc:
            log.info("node %s did not answer its heartbeat probe: %s", node_id, type(exc).__name__)
            ray.cancel(ref)
            return node_id, None

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.refresh()
            except Exception:
                log.exception("node heartbeat failed")


@dataclass
class MetricsSnapshot:
    """What /metrics shows that only the coordinator knows (counts of the store are read by the API)."""

    jobs_running: int
    tasks_running: int
    nodes: list[NodeInfo]
    queues: list[Any]  # QueueInfo
    counters: Any  # store.stats.CounterSnapshot
    # The executors' reports since the coordinator started, by how they came: "channel" (the direct channel of
    # an executor on the coordinator's node, coordinator/channels.py) or "ray" (an actor call).
    executor_reports: dict[str, int] = field(default_factory=dict)
