"""A node listed before its first heartbeat probe answers still has every field Tork sends (tork-web's Nodes page
parses startedAt and shows cpuPercent; a missing one broke the whole page)."""

from __future__ import annotations

from tork_ray.coordinator.nodes import NodeMonitor

NODE = {
    "NodeID": "n1",
    "NodeName": "10.0.0.5",
    "NodeManagerHostname": "worker-1",
    "NodeManagerPort": 1234,
    "Alive": True,
    "Resources": {"queue:default": 2.0, "CPU": 2.0},
}


def test_a_node_without_a_probe_answer_has_started_at_and_cpu() -> None:
    monitor = NodeMonitor()
    first = monitor._info(NODE, {}, now=1_000.0)
    later = monitor._info(NODE, {}, now=1_005.0)
    assert first.status == "DOWN" and first.hostname == "worker-1" and first.queues == {"default": 2}
    assert first.cpu_percent == 0.0
    assert first.started_at is not None and first.started_at.timestamp() == 1_000.0
    assert later.started_at == first.started_at  # when it was first seen, not "now" on every call
