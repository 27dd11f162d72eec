"""The engine's housekeeping on a node, run there as Ray tasks by the coordinator: what a restart, a lost task
or a joining node left in the container engine, removed by its labels.

Here, not beside the coordinator code that sends them: a Ray task's function is loaded by the worker process
that runs it, with its whole module, and that worker then serves the queue's tasks. From a coordinator module
it brought the coordinator's imports (the store, SQLAlchemy: ~29 MB) into the worker, and into the engine's
cold start, whose recovery waits for the first of them.
"""

from __future__ import annotations

import time

import ray

from tork_ray.runtime.base import LABEL_SCOPE, LABEL_TASK
from tork_ray.settings import RuntimeSettings

# A create call the daemon was still serving when the task was lost lands a moment later: look twice.
SECOND_PASS_SECONDS = 2.0


@ray.remote(num_cpus=0, max_retries=0)
def warm_up() -> None:
    """Nothing but the start of a worker process with the task modules loaded, while the coordinator's own
    process starts: the recovery's clean-up, then the first task, find it ready instead of starting one."""
    import tork_ray.worker.task  # noqa: F401


@ray.remote(num_cpus=0, max_retries=0)
def remove_orphan_containers(scope: str, runtime: RuntimeSettings) -> int:
    """Runs on one node: removes every container, volume and network of this engine's scope (none is live
    during recovery), with the runtime the node runs."""
    from tork_ray.worker.task import remove_orphans

    return remove_orphans(scope, runtime)


@ray.remote(num_cpus=0, max_retries=0)
def remove_task_leftovers(scope: str, task_id: str, runtime: RuntimeSettings) -> None:
    """Runs on one node: removes the containers, volumes and network of one task, with the node's runtime."""
    from tork_ray.worker.reaper import clean_up
    from tork_ray.worker.task import node_settings

    kind = node_settings(runtime).type
    if kind == "shell":
        return  # no labelled resources: its process group dies with the worker's watchdog
    for second_pass in (False, True):
        if second_pass:
            time.sleep(SECOND_PASS_SECONDS)
        clean_up({"kind": kind, "labels": {LABEL_SCOPE: scope, LABEL_TASK: task_id}})


@ray.remote(num_cpus=0, max_retries=0)
def labelled_task_ids(scope: str, runtime: RuntimeSettings) -> list[str]:
    """Runs on one node: the task ids of every container of `scope` there, running or not."""
    from tork_ray.worker.task import node_settings

    if node_settings(runtime).type != "docker":
        return []  # shell: nothing labelled; podman: its watchdog and the start-up sweep (recovery.py) only
    import docker

    client = docker.from_env()
    try:
        containers = client.containers.list(all=True, filters={"label": f"{LABEL_SCOPE}={scope}"}, ignore_removed=True)
        return sorted({c.labels.get(LABEL_TASK, "") for c in containers} - {""})
    finally:
        client.close()
