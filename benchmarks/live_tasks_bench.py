"""`python -m benchmarks.live_tasks_bench`: how many RUNNING tasks one coordinator's Engine holds, and the memory
each costs while it runs.

The Engine of coordinator_bench (no Ray, SQLite, a no-op launch) whose worker reports its start and then never
answers until released: `--tasks` tasks are launched at once (the queue has as many slots), and once every one is
stored RUNNING the process's resident memory (/proc/self/statm) is read again; the delta over the count is the
memory per live task. Meanwhile `--log-parts` of them store two log parts each (Store.append_log, what the
coordinator's I/O thread does for each part a worker ships). Then all are released and the jobs must all
complete. Two shapes: `jobs` (as many one-task jobs: the common case of 10,000 running tasks) and `parallel`
(jobs of one `parallel` of up to 5,000 tasks each: two for 10,000). With `--tracemalloc`, a second round of each
shape counts the Python heap instead (slower, so timings of that round are not reported). Each round runs in a
process forked for it. The fake worker's coroutine is counted too; in the real coordinator a Ray ObjectRef and
Ray's own record of the submitted task take its place (Ray's share, in C++, is not measured here: see
ray_owner_bench). Results: results/live_tasks_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing import Pipe, get_context
from pathlib import Path
from typing import Any

from benchmarks.coordinator_bench import RESULTS, bench_engine, close_engine, parallel_spec
from tork_ray.coordinator.engine import Engine
from tork_ray.domain.states import JobState
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.models import JobInput
from tork_ray.store.store import Store

PAGE = os.sysconf("SC_PAGE_SIZE")
PARALLEL_WIDTH = 5000


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class Held:
    """Workers that report their start, then wait for `release`: tasks that stay RUNNING as long as we like."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.started = 0
        self.task_ids: list[str] = []
        self.all_started = asyncio.Event()
        self.release = asyncio.Event()

    async def worker(self, engine: Engine, request: RunRequest) -> dict[str, str]:
        await engine.report_started(request.task_id, "bench-node")
        self.started += 1
        self.task_ids.append(request.task_id)
        if self.started == self.expected:
            self.all_started.set()
        await self.release.wait()
        return {"result": ""}


async def all_completed(engine: Engine, job_ids: list[str]) -> bool:
    """Waits for every job; True if all COMPLETED (the jobs read back are dropped here, not counted after)."""
    for job_id in job_ids:
        job = await engine.wait_job(job_id, 3600)
        if job is None or job.state is not JobState.COMPLETED:
            return False
    return True


def parallel_jobs(tasks: int) -> list[JobInput]:
    """Jobs of one `parallel` each, `tasks` children in all, at most PARALLEL_WIDTH a job (limits.tasks caps a
    document at 10,000 tasks, the parallel itself counted)."""
    jobs = -(-tasks // PARALLEL_WIDTH)
    return [parallel_spec(tasks // jobs + (1 if index < tasks % jobs else 0)) for index in range(jobs)]


def log_parts_per_second(store: Store, task_ids: list[str]) -> list[float]:
    """Store.append_log (what the coordinator's I/O thread does for each part a worker ships, about one a second
    per task that prints) once for each task, twice: a task's first part also reads its job for the values to
    redact. Parts/s of each pass; the Ray call that carries a part is not counted."""
    rates = []
    for _ in range(2):
        began = time.perf_counter()
        for task_id in task_ids:
            store.append_log(task_id, "a line of output\n")
        rates.append(round(len(task_ids) / (time.perf_counter() - began), 1))
    return rates


def heap_bytes(traced: bool) -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] if traced else rss_bytes()


async def live_round(directory: Path, tasks: int, shape: str, traced: bool, log_parts: int = 0) -> dict[str, Any]:
    held = Held(tasks)
    engine = bench_engine(f"sqlite:///{directory / f'live-{time.monotonic_ns()}.db'}", tasks, held.worker)
    specs = [parallel_spec(0)] * tasks if shape == "jobs" else parallel_jobs(tasks)
    before = heap_bytes(traced)
    began = time.perf_counter()
    job_ids = [engine.submit(spec).id for spec in specs]
    await asyncio.wait_for(held.all_started.wait(), 3600)
    running_seconds = time.perf_counter() - began
    live = heap_bytes(traced)
    parts = log_parts_per_second(engine.writer.store, held.task_ids[:log_parts]) if log_parts else []
    held.release.set()
    released = time.perf_counter()
    if not await all_completed(engine, job_ids):
        raise SystemExit("a benchmark job did not complete")
    drain_seconds = time.perf_counter() - released
    after = heap_bytes(traced)
    close_engine(engine)
    return {
        "shape": shape,
        "tasks": tasks,
        "measure": "tracemalloc" if traced else "rss",
        "to_all_running_seconds": round(running_seconds, 2),
        "tasks_started_per_second": round(tasks / running_seconds, 1),
        "drain_seconds": round(drain_seconds, 2),
        "bytes_per_live_task": round((live - before) / tasks),
        "mib_while_live": round((live - before) / 2**20, 1),
        "mib_left_after_drain": round((after - before) / 2**20, 1),
        **({"log_parts_per_second_first_second": parts} if parts else {}),
    }


def round_in_process(directory: Path, tasks: int, shape: str, traced: bool, log_parts: int) -> dict[str, Any]:
    """One round in a process forked for it: memory freed by an earlier round, kept by the allocator, would
    otherwise hide a later round's growth."""
    if traced:
        tracemalloc.start()
    result = asyncio.run(live_round(directory, tasks, shape, traced, 0 if traced else log_parts))
    if traced:  # the tracer's own bookkeeping slows every allocation: no timings from this round
        result = {k: v for k, v in result.items() if not k.endswith(("seconds", "per_second"))}
    return result


def in_fork(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """function(*args) in a child forked for it; its answer (an exception there ends this run)."""
    receiver, sender = Pipe(duplex=False)

    def child() -> None:
        sender.send(function(*args))

    process = get_context("fork").Process(target=child)
    process.start()
    sender.close()
    try:
        answer: dict[str, Any] = receiver.recv()
    except EOFError:
        process.join()
        raise SystemExit(f"the round's process failed (exit {process.exitcode})") from None
    process.join()
    return answer


def run(args: argparse.Namespace, directory: Path) -> list[dict[str, Any]]:
    asyncio.run(live_round(directory, 50, "jobs", False))  # warm-up (imports, caches), inherited by each fork
    results = []
    for shape in args.shapes:
        for traced in (False, True) if args.tracemalloc else (False,):
            # Forked, not spawned: the child starts warm, from this process's state; it holds no thread or
            # connection (the warm-up's store is closed).
            results.append(in_fork(round_in_process, directory, args.tasks, shape, traced, args.log_parts))
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_tasks_bench", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks RUNNING at once (default 10,000)")
    parser.add_argument("--shapes", nargs="+", choices=("jobs", "parallel"), default=["jobs", "parallel"])
    parser.add_argument("--log-parts", type=int, default=2000, help="tasks that each store two log parts (2,000)")
    parser.add_argument("--tracemalloc", action="store_true", help="also count the Python heap (a slower round)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tork-live-bench-") as tmp:
        results = run(args, Path(tmp))
    report = {"settings": vars(args), "load_average": [load_before, os.getloadavg()], "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live_tasks_bench.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
