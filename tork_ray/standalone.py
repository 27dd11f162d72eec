"""Standalone mode: a local Ray with the queue resources, the coordinator actor and the API under uvicorn."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray

from tork_ray.local_ray import local_node
from tork_ray.placement import node_resources
from tork_ray.settings import Settings
from tork_ray.worker.interrupts import restore_sigint, worker_runtime_env

log = logging.getLogger("tork_ray")

# What the engine needs once Ray is up: imported on a thread while ray.init waits for Ray's own processes
# (GCS, raylet) to start, a second and more of a cold start that would otherwise come before or after it.
_ENGINE_MODULES = ("tork_ray.coordinator.actor", "tork_ray.api.app", "uvicorn")
# Ray starts a worker process per CPU when the driver connects, to be ready for its first tasks. Ours never
# serve: the engine's job has a runtime_env (worker_process_setup_hook, worker/interrupts.py) and Ray starts
# those workers without it, so every task and actor of the engine starts a worker of its own anyway (checked
# on Ray 2.60). They cost two processes' start on the CPUs during the cold start and ~100 MB each, idle.
NO_PRESTART = {"RAY_prestart_worker_first_driver": "0", "RAY_enable_worker_prestart": "0"}


def ray_init_args(settings: Settings) -> dict[str, Any]:
    """ray.init() arguments for the engine's driver (the cluster's address; none yet for a local node)."""
    args: dict[str, Any] = {
        "namespace": settings.ray.namespace,
        "include_dashboard": False,
        "configure_logging": False,
        "log_to_driver": False,
        "runtime_env": worker_runtime_env(),
    }
    if settings.ray.address:
        args["address"] = settings.ray.address
    return args


@contextmanager
def engine(settings: Settings) -> Iterator[Any]:
    """Ray + coordinator for the duration of the block; on the way out running tasks are interrupted (their
    containers removed), the actor is stopped and Ray shut down."""
    with ray_started(settings), coordinator_running(settings) as coordinator:
        yield coordinator


@contextmanager
def ray_started(settings: Settings) -> Iterator[None]:
    """Ray for the block (a local node of its own serving `settings.queues`, or the cluster of
    `settings.ray.address`), with the engine's modules imported while it starts; shut down on the way out."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Without this Ray churns worker processes once more tasks run at once than it has CPUs.
    slots = sum(settings.queues.values())
    os.environ.setdefault("RAY_num_workers_soft_limit", str(max(slots + 2, os.cpu_count() or 1)))
    for name, value in NO_PRESTART.items():
        os.environ.setdefault(name, value)
    # Before Ray starts its processes: started with SIGINT ignored, they would all inherit it (see restore_sigint).
    if restore_sigint():
        log.info("SIGINT was ignored by whatever started the engine: handling restored")
    preload = threading.Thread(target=_import_engine_modules, name="tork-ray-preload", daemon=True)
    preload.start()
    try:
        with _ray_connected(settings):
            if not settings.ray.address and settings.worker.executor == "task":
                # A worker for the recovery's clean-up, then the first task (an executor per node starts its own).
                from tork_ray.worker.housekeeping import warm_up

                warm_up.remote()
            preload.join()
            yield
    finally:
        _remove_leftovers(settings)


@contextmanager
def _ray_connected(settings: Settings) -> Iterator[None]:
    """This process connected to Ray as a driver: to `settings.ray.address`, or to a local node of its own
    (local_ray.py), which is stopped after the driver disconnects."""
    with contextlib.ExitStack() as node:
        args = ray_init_args(settings)
        if not settings.ray.address:
            args["address"] = node.enter_context(local_node(node_resources(settings, head=True), settings.ray.num_cpus))
        ray.init(**args)
        try:
            yield
        finally:
            ray.shutdown()


@contextmanager
def coordinator_running(settings: Settings) -> Iterator[Any]:
    """The coordinator actor for the block, on the Ray this process is connected to; stopped on the way out,
    its running tasks interrupted."""
    from tork_ray.coordinator.actor import start_coordinator

    coordinator: Any = start_coordinator(settings)
    try:
        yield coordinator
    finally:
        try:
            stopped = int(ray.get(coordinator.shutdown.remote(), timeout=30))
            log.info("interrupted %d running task(s)", stopped)
            ray.kill(coordinator)
        except Exception as exc:  # shutting down regardless
            log.warning("coordinator did not stop cleanly: %s", exc)


def _import_engine_modules() -> None:
    for name in _ENGINE_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # imported again where it is used, which raises there, in the engine's own thread
            log.debug("preloading %s failed", name, exc_info=True)


def _remove_leftovers(settings: Settings) -> None:
    # Belt and braces: a task interrupted too late to clean up after itself leaves nothing behind either.
    if settings.ray.address:
        return  # on a cluster the other nodes are not ours to sweep from here
    try:
        from tork_ray.worker.task import remove_orphans

        removed = remove_orphans(settings.ray.namespace, settings.runtime)
        if removed:
            log.info("removed %d leftover container(s), volume(s) or network(s)", removed)
    except Exception as exc:
        log.warning("could not check for leftovers: %s", exc)


def serve(settings: Settings) -> None:
    """Runs the engine in the foreground until Ctrl-C."""
    with engine(settings) as coordinator:
        import uvicorn

        from tork_ray.api.app import create_app
        from tork_ray.api.background import KEEP_ALIVE_SECONDS

        app = create_app(settings, coordinator)
        # access_log off: requests are logged by our own middleware (middleware.web.logger: level, skip list),
        # not a second time, unconditionally, by uvicorn.
        config = uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            log_level="info",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        log.info("tork_ray API on http://%s:%d (data in %s)", settings.api.host, settings.api.port, settings.data_dir)
        # uvicorn re-raises the Ctrl-C it handled; the engine's own shutdown follows.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
    log.info("tork_ray stopped")
