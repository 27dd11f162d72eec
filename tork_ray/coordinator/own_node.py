"""Whether the coordinator's own node is still there, asked before it stores a task as lost.

When the engine crashes (its process SIGKILLed, or the head going down), Ray's raylet dies with it, and the
coordinator actor outlives it by a few milliseconds: long enough to see every running Ray task fail with
NodeDiedError and to store each as lost, failing it or spending its retry, although nothing was wrong with the
tasks. The coordinator is what is going, so it must write nothing: the next coordinator redelivers those tasks
by their rules (coordinator/recovery.py), as after any crash. A worker node's death is not this case: the
coordinator's own raylet lives on, and the loss is stored as it should be."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

# What a coordinator that finds its node gone exits with: Ray restarts it if the cluster lives on.
EXIT_CODE = 70  # EX_SOFTWARE


def own_node_probe() -> Callable[[], bool]:
    """In a Ray actor, a probe that is False once the raylet that started this process has died: a worker
    process is the raylet's child, and is handed to another parent when the raylet exits. In plain code (unit
    tests make an Engine directly) the node is always there."""
    try:
        import ray

        in_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:
        in_actor = False
    if not in_actor:
        return lambda: True
    raylet = os.getppid()
    return lambda: os.getppid() == raylet


def exit_with_node(task_id: str) -> None:
    """Ends the process at once, storing nothing: its node is gone, and with it every task it saw fail."""
    log.error("task %s was lost with this coordinator's own node: exiting without storing it", task_id)
    os._exit(EXIT_CODE)
