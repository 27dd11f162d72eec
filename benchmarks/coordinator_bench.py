"""`python -m benchmarks.coordinator_bench`: the coordinator alone (no Ray, a no-op runtime): task state changes
per second, every one durable in SQLite, against the store alone making as many single-row commits.

The engine is the coordinator's own (Engine, StateWriter, Store on a fresh SQLite file) on an asyncio loop; its
`launch` is a no-op worker that reports the start (as run_task's task_started call) and answers at once; and,
interleaved with it, one that brings its start with its result (as run_task does for a task shorter than
worker.start_report_delay: one call and one transaction less). One job with a `parallel` of `--tasks` tasks on
a queue of `--slots` slots: each task is created, SCHEDULED, RUNNING and COMPLETED (four state changes). The
baseline: as many `UPDATE` of one row, each its own transaction, with the sqlite3 module on the same kind of
file (WAL, synchronous=NORMAL). Rounds interleaved; results/coordinator_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.states import JobState
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.models import JobInput
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
CHANGES_PER_TASK = 4  # created (PENDING), SCHEDULED, RUNNING, COMPLETED


Worker = Callable[[Engine, RunRequest], Awaitable[dict[str, str]]]


async def noop_worker(engine: Engine, request: RunRequest) -> dict[str, str]:
    """What run_task does for the coordinator, minus the work: reports the start, then answers at once."""
    await engine.report_started(request.task_id, "bench-node")
    return {"result": ""}


async def folded_worker(engine: Engine, request: RunRequest) -> dict[str, str]:
    """A short task as a worker reports it: its start comes with its result (worker.start_report_delay)."""
    return {"result": "", "nodeId": "bench-node", "startedAt": datetime.now(UTC).isoformat()}


def bench_engine(url: str, slots: int, worker: Worker = noop_worker) -> Engine:
    """The coordinator's own Engine, StateWriter and Store on `url`, whose `launch` runs `worker` on this loop
    instead of a Ray task; one queue `default` of `slots` slots (no Ray to ask). Close with close_engine."""
    engine: Engine

    def launch(request: RunRequest, resource: str) -> Any:
        return asyncio.ensure_future(worker(engine, request))

    engine = Engine(StateWriter(Store(url)), launch, scope="bench")
    engine.dispatcher._capacity = {"default": slots}  # no Ray to ask: the queue's slots, for ever
    engine.dispatcher._capacity_read_at = float("inf")
    return engine


def close_engine(engine: Engine) -> None:
    engine.writer.store.close()


def parallel_spec(tasks: int) -> JobInput:
    """One job whose one task is a `parallel` of `tasks` tasks `run: "true"` (one task alone when `tasks` is 0)."""
    task: dict[str, Any] = {"name": "t", "run": "true"}
    if tasks:
        task = {"name": "p", "parallel": {"tasks": [task] * tasks}}
    body = {"name": "bench", "tasks": [task]}
    return parse_job(json.dumps(body).encode(), "application/json")


async def engine_round(directory: Path, tasks: int, slots: int, with_result: bool = False) -> float:
    """Seconds for one job of a `parallel` of `tasks` no-op tasks, from submit to COMPLETED; `with_result`: each
    start comes with its task's result instead of in a call of its own."""
    worker = folded_worker if with_result else noop_worker
    engine = bench_engine(f"sqlite:///{directory / f'engine-{time.monotonic_ns()}.db'}", slots, worker)
    spec = parallel_spec(tasks)
    began = time.perf_counter()
    job = engine.submit(spec)
    done = await engine.wait_job(job.id, 600)
    elapsed = time.perf_counter() - began
    if done is None or done.state is not JobState.COMPLETED:
        raise SystemExit(f"benchmark job did not complete: {done.state if done else 'timed out'}")
    close_engine(engine)
    return elapsed


def store_round(directory: Path, changes: int) -> float:
    """Seconds for `changes` single-row UPDATE commits, the store alone."""
    connection = sqlite3.connect(directory / f"raw-{time.monotonic_ns()}.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, state TEXT)")
    connection.execute("INSERT INTO tasks VALUES ('t', 'PENDING')")
    began = time.perf_counter()
    for index in range(changes):
        connection.execute("BEGIN")
        connection.execute("UPDATE tasks SET state = ? WHERE id = 't'", (str(index),))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coordinator_bench", description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks of the parallel (default 2000)")
    parser.add_argument("--slots", type=int, default=50, help="the queue's slots: tasks in flight (default 50)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    changes = args.tasks * CHANGES_PER_TASK
    engine_seconds, store_seconds, with_result_seconds = [], [], []
    with tempfile.TemporaryDirectory(prefix="tork-coord-bench-") as tmp:
        directory = Path(tmp)
        asyncio.run(engine_round(directory, min(args.tasks, 50), args.slots))  # warm-up: imports, caches
        for _ in range(args.rounds):
            store_seconds.append(store_round(directory, changes))
            engine_seconds.append(asyncio.run(engine_round(directory, args.tasks, args.slots)))
            with_result_seconds.append(asyncio.run(engine_round(directory, args.tasks, args.slots, with_result=True)))
    engine_rate = changes / statistics.median(engine_seconds)
    store_rate = changes / statistics.median(store_seconds)
    report = {
        "settings": vars(args),
        "engine_seconds": engine_seconds,
        "store_seconds": store_seconds,
        "with_result_seconds": with_result_seconds,
        "engine_state_changes_per_second": round(engine_rate, 1),
        "engine_tasks_per_second": round(args.tasks / statistics.median(engine_seconds), 1),
        "store_commits_per_second": round(store_rate, 1),
        # The same, each start brought with its task's result (worker.start_report_delay; a short task's case).
        "with_result_state_changes_per_second": round(changes / statistics.median(with_result_seconds), 1),
        "with_result_tasks_per_second": round(args.tasks / statistics.median(with_result_seconds), 1),
        "ratio": round(engine_rate / store_rate, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coordinator_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_seconds")}))


if __name__ == "__main__":
    main()
