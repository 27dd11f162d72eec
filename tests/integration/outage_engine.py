"""An engine of one outage test's own (its coordinator actor, store and API on the session's Ray cluster), and the
outages the tests make: a private PostgreSQL server stopped, or a SQLite database locked by another process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import httpx
import ray

from tests.engine import stop_coordinator
from tests.private_postgres import PrivatePostgres
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.coordinator.actor import MAX_CONCURRENCY, CoordinatorActor
from tork_ray.settings import DatastoreSettings, Settings
from tork_ray.store.outage import StoreRetrySettings
from tork_ray.store.store import open_store

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass
class OutageEngine:
    http: httpx.Client
    namespace: str
    coordinator: Any
    settings: Settings

    def actor(self) -> dict[str, Any]:
        """The coordinator actor's entry in Ray's GCS: State, NumRestarts, Pid (its process, once placed)."""
        return ray._private.state.actors(actor_id=self.coordinator._actor_id.hex())  # type: ignore[no-any-return]

    def restarts(self) -> int:
        """How often Ray restarted the coordinator actor."""
        return int(self.actor().get("NumRestarts", 0))

    def constructing(self, old_pid: int) -> bool:
        """True while a new process of the restarted actor runs its constructor (placed, not yet ALIVE)."""
        info = self.actor()
        return info["State"] == "RESTARTING" and info["Pid"] not in (0, old_pid)


@contextmanager
def outage_engine(
    base: Settings, data_dir: Path, datastore: DatastoreSettings, retry: StoreRetrySettings, **more: Any
) -> Iterator[OutageEngine]:
    """The engine as start_coordinator makes it (restarted by Ray when its process dies, calls retried), not
    detached, in a namespace of its own; `more` replaces further settings."""
    namespace = f"outage_{uuid.uuid4().hex[:8]}"
    settings = replace(
        base,
        data_dir=data_dir,
        ray=replace(base.ray, namespace=namespace, coordinator_name=f"c-{namespace}"),
        datastore=datastore,
        store_retry=retry,
        **more,
    )
    store = open_store(settings)
    handle = CoordinatorActor.options(  # type: ignore[attr-defined]
        name=settings.ray.coordinator_name,
        namespace=namespace,
        num_cpus=0,
        max_concurrency=MAX_CONCURRENCY,
        max_restarts=-1,
        max_task_retries=-1,
    ).remote(settings)
    try:
        app = create_app(settings, handle, store)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=180) as http:
            yield OutageEngine(http, namespace, handle, settings)
    finally:
        stop_coordinator(handle)
        store.close()


class Outage(Protocol):
    def begin(self) -> None: ...

    def end(self) -> None: ...


class ServerStopped:
    """PostgreSQL away: the server stopped (fast shutdown: sessions cut off), then started again."""

    def __init__(self, server: PrivatePostgres) -> None:
        self.server = server

    def begin(self) -> None:
        self.server.stop()

    def end(self) -> None:
        self.server.start()


# Another process that takes SQLite's write lock and holds it until its stdin closes.
_HOLD = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
    "c.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
    "c.execute('COMMIT')\n"
)


class SqliteLocked:
    """SQLite busy: another process holds `BEGIN EXCLUSIVE` on the database file (a long write, a backup tool,
    a migration), so every write of the engine meets "database is locked" past its busy timeout."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.holder: subprocess.Popen[str] | None = None

    def begin(self) -> None:
        self.holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(self.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.holder.stdout is not None and self.holder.stdout.readline().strip() == "locked"

    def end(self) -> None:
        assert self.holder is not None and self.holder.stdin is not None
        self.holder.stdin.close()
        assert self.holder.wait(timeout=30) == 0

    def __del__(self) -> None:  # a failed test must not leave the lock held for the next one
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()


def terminal(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    response = http.get(f"/jobs/{job_id}")
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 and body["state"] in TERMINAL else None


def states(http: httpx.Client, ids: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Each job's tasks as stored now: (id, name, state)."""
    found = {}
    for job_id in ids:
        execution = http.get(f"/jobs/{job_id}").json()["execution"]
        found[job_id] = [(t["id"], t["name"], t["state"]) for t in execution]
    return found
