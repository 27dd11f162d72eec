"""Where tork_ray's own actors live: on the head, through a custom resource that only the head offers.

The coordinator actor and the API's Serve replicas hold the store's credentials and the API's address; Ray may
restart them after a crash, and without a constraint it may restart them on any node. Each asks for a tiny share
of `tork:head` (and no CPU), which only `ray start --head --resources "$(tork-ray resources --head)"` (or
standalone mode's own Ray) provides, so Ray places and restarts them on the head and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ray

from tork_ray.coordinator.dispatch import queue_resource
from tork_ray.errors import Unavailable

if TYPE_CHECKING:
    from tork_ray.settings import Settings

HEAD_RESOURCE = "tork:head"
# The head offers 1 unit; each actor of ours takes 1/1000 of it: room for 1,000 of them, never a real limit.
HEAD_CAPACITY = 1.0
HEAD_SHARE = 0.001


def head_resources() -> dict[str, float]:
    """What the head node offers (added to its queue resources)."""
    return {HEAD_RESOURCE: HEAD_CAPACITY}


def node_resources(settings: Settings, *, head: bool = False) -> dict[str, float]:
    """The custom resources that make a node serve the configured queues (worker.queues.*), a slot per task; a
    queue with 0 slots is left out (`TORK_WORKER_QUEUES_DEFAULT=0`: a head that runs no tasks). `head`: plus
    the head-only resource the coordinator and the API replicas ask for."""
    resources = {queue_resource(name): float(slots) for name, slots in sorted(settings.queues.items()) if slots > 0}
    if head:
        resources.update(head_resources())
    return resources


def on_head() -> dict[str, float]:
    """What an actor that must run on the head asks for (with num_cpus=0)."""
    return {HEAD_RESOURCE: HEAD_SHARE}


def check_head(cluster_resources: dict[str, Any] | None = None) -> None:
    """Fails with a clear message when no live node offers the head resource: an actor asking for it would
    otherwise wait for ever, unplaced."""
    resources = ray.cluster_resources() if cluster_resources is None else cluster_resources
    if resources.get(HEAD_RESOURCE, 0) < HEAD_SHARE:
        raise Unavailable(
            f"no node of the Ray cluster offers the {HEAD_RESOURCE!r} resource, which the coordinator and the "
            f'API run on: start the head with `ray start --head --resources "$(tork-ray resources --head)"`'
        )
