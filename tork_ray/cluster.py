"""Cluster mode: join a running Ray cluster, start (or find) the coordinator, serve the API with Ray Serve."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import ray

from tork_ray.coordinator.actor import start_coordinator
from tork_ray.errors import TorkError
from tork_ray.placement import node_resources
from tork_ray.settings import Settings
from tork_ray.worker.interrupts import worker_runtime_env

log = logging.getLogger("tork_ray")


def queue_resources(settings: Settings, *, head: bool = False) -> str:
    """The `ray start --resources` JSON of placement.node_resources."""
    return json.dumps(node_resources(settings, head=head))


class ClusterStoreRefused(TorkError):
    """Cluster mode was asked to run on a SQLite store without datastore.sqlite.cluster."""


def check_cluster_store(settings: Settings) -> None:
    """Refuses a SQLite store in cluster mode: the file lives on one node, and the coordinator actor (restarted
    by Ray wherever it fits) or a Serve replica on another node would open an empty store of its own."""
    if settings.datastore.type == "postgres" or settings.datastore.sqlite_cluster:
        return
    raise ClusterStoreRefused(
        f"cluster mode needs a store every node reaches, and datastore.type is {settings.datastore.type!r} "
        "(a SQLite file on this node): set TORK_DATASTORE_TYPE=postgres and TORK_DATASTORE_POSTGRES_DSN="
        "postgresql+psycopg://user:password@host:5432/db (datastore.type, datastore.postgres.dsn in the TOML); "
        "or, for a cluster whose coordinator and API never leave this node, TORK_DATASTORE_SQLITE_CLUSTER=true "
        "(datastore.sqlite.cluster)"
    )


def connect(settings: Settings) -> None:
    # Set before the first ray call: a worker process churn guard, as in standalone mode.
    os.environ.setdefault("RAY_num_workers_soft_limit", str(max(sum(settings.queues.values()) + 2, 4)))
    ray.init(
        address=settings.ray.address or "auto",
        namespace=settings.ray.namespace,
        configure_logging=False,
        log_to_driver=False,
        runtime_env=worker_runtime_env(),
    )


def run_coordinator(settings: Settings, *, with_serve: bool = True) -> Any:
    """Starts the detached coordinator actor (or finds the running one) and, with Serve, deploys the API.

    The actor and the Serve application outlive this process: `ray up`'s head start command runs this once.
    Without Serve, the API is served here by uvicorn in the foreground (the coordinator still outlives it).
    A SQLite store is refused before anything starts (check_cluster_store).
    """
    check_cluster_store(settings)
    connect(settings)
    coordinator = start_coordinator(settings)
    log.info("coordinator %s ready in namespace %s", settings.ray.coordinator_name, settings.ray.namespace)
    if with_serve:
        from tork_ray.api.serve import deploy

        deploy(settings)
        log.info("API served by Ray Serve on http://%s:%d", settings.api.host, settings.api.port)
        return coordinator
    import uvicorn

    from tork_ray.api.app import create_app

    uvicorn.run(create_app(settings, coordinator), host=settings.api.host, port=settings.api.port)
    return coordinator
