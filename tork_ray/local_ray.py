"""The local Ray node of standalone mode: Ray's head processes minus two a lone engine never uses.

`ray.init(address="local")` starts, beside the GCS and the raylet, Ray's autoscaler monitor and its log monitor.
A standalone engine has nothing to autoscale, and it reads no worker output through Ray (log_to_driver is off;
a task's log reaches the coordinator by its own calls). The two are Python processes of ~80 MB each, idle, and
two interpreters more to start on a two-core machine's cold start. So the node is started here with Ray's own
Node class and parameters, as ray.init does it, with those two left out, and ray.init then connects to it.

`ray._private` is not Ray's public API: tests/e2e/test_standalone.py checks, on the Ray installed, that `make
run`'s node comes up without the two and goes away whole on Ctrl-C, and every test session runs on such a node,
so that an upgrade of Ray that changes either fails the tests, not a user. Measured (memory_bench, one run): the
idle tree 1,102 -> 938 MiB, the cold start 10.4 -> 8.8 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def local_node(resources: dict[str, float], num_cpus: int | None) -> Iterator[str]:
    """A new head node of our own for the block (never one some `ray start` left running); yields its address.
    Its processes share the caller's fate as ray.init's do (the kernel's, or Ray's reaper process), and are
    stopped on the way out."""
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        num_cpus=num_cpus,
        resources=resources,
        include_dashboard=False,
        no_monitor=True,
        include_log_monitor=False,  # type: ignore[arg-type]  # annotated str, read as a bool
    )
    node: Any = Node(params, head=True, shutdown_at_exit=False, spawn_reaper=True, ray_init_cluster=True)
    try:
        yield str(node.address)
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=True)
