"""`python -m benchmarks.sharding_bench`: K coordinator shards on one machine against one, in the same run.

Each shard is a process of its own owning its jobs, with its own Engine and store (coordinator_bench's Engine: no
Ray, a no-op launch; a SQLite file per shard, or with `--stores postgres` one shared PostgreSQL database, as shards
of a real deployment would share it). A router (this process, standing for the API) makes each job's id and
sends the job to shard `shard_of(id, K)`, a stable hash of the id modulo K. A round submits `--jobs` jobs, each a
`parallel` of `--tasks-per-job` no-op tasks, spread over the K shards, the queue's `--slots` split between them
(the cluster's slots do not grow with K). Every shard builds its engine first, then all start at once, and the
round's time runs from the first shard's start to the last shard's end. Figures: the aggregate durable task
state changes/s (4 per task: created, SCHEDULED, RUNNING, COMPLETED) and tasks/s, the CPU the shards spent per
task, the share of the machine's cores busy during the round (whoever used them) and a shard's RSS. Rounds are
interleaved (K = 1, 2, 4, 1, 2, 4, ...); the median counts.

Why processes (multiprocessing, forked) and not Ray actors: what sharding changes is that each shard has its own
event loop, its own writer and its own store connection, on a core of its own; that is what is measured. The
no-op launch needs no Ray, and a Ray cluster here would add its daemons' CPU and start-up (10-60 s on this
machine) to two cores that the shards already fill; the coordinator's Ray traffic per task (~6.4 ms of CPU) is
measured by shell_bench and profile_tasks. In a deployment each shard is a named Ray actor (docs/scaling.md).

On this machine's 2 cores, K shards cannot do more than ~2 cores of work: K = 4 shows the cost of more shards
than cores (contention), not the gain of 4 machines. Results: results/sharding_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.coordinator_bench import CHANGES_PER_TASK, RESULTS, bench_engine, close_engine, parallel_spec
from benchmarks.live_tasks_bench import rss_bytes
from tork_ray.domain.models import new_id
from tork_ray.domain.states import JobState
from tork_ray.store.store import Store


def shard_of(job_id: str, shards: int) -> int:
    """The shard that owns job `job_id`: stable across processes and restarts (unlike hash())."""
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "big") % shards


async def shard_round(commands: Connection, url: str, job_ids: list[str], tasks_per_job: int, slots: int) -> dict:
    """One shard's share of a round: builds its engine, says ready, waits for go, runs its jobs to the end."""
    engine = bench_engine(url, slots)
    spec = parallel_spec(tasks_per_job)
    commands.send("ready")
    commands.recv()  # go: every shard starts together
    cpu, began = time.process_time(), time.perf_counter()  # perf_counter: CLOCK_MONOTONIC, one clock for all
    for job_id in job_ids:
        engine.submit(spec, job_id=job_id)
    states = [await engine.wait_job(job_id, 600) for job_id in job_ids]
    ended = time.perf_counter()
    close_engine(engine)
    completed = sum(1 for job in states if job is not None and job.state is JobState.COMPLETED)
    cpu = time.process_time() - cpu
    return {"began": began, "ended": ended, "cpu": cpu, "jobs": len(job_ids), "done": completed, "rss": rss_bytes()}


def shard_main(commands: Connection) -> None:
    """A shard process: one round per command until None."""
    while (command := commands.recv()) is not None:
        commands.send(asyncio.run(shard_round(commands, *command)))


class Shards:
    """Up to `count` shard processes, forked once and reused by every round (a round uses the first K)."""

    def __init__(self, count: int) -> None:
        context = get_context("fork")  # this process holds no thread or connection yet: a fork starts warm
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=shard_main, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def round(self, urls: list[str], job_ids: list[str], tasks_per_job: int, slots: int) -> dict[str, Any]:
        k = len(urls)
        owned: list[list[str]] = [[] for _ in range(k)]
        for job_id in job_ids:
            owned[shard_of(job_id, k)].append(job_id)
        share = -(-slots // k)  # the cluster's slots split between the shards (docs/scaling.md: capacity)
        for pipe, url, ids in zip(self.pipes, urls, owned, strict=False):
            pipe.send((url, ids, tasks_per_job, share))
        for pipe in self.pipes[:k]:
            if pipe.recv() != "ready":
                raise SystemExit("a shard failed to start")
        before = cpu_jiffies()
        for pipe in self.pipes[:k]:
            pipe.send("go")
        parts = [pipe.recv() for pipe in self.pipes[:k]]
        after = cpu_jiffies()
        busy = (after[0] - before[0], after[1] - before[1])
        if sum(part["done"] for part in parts) != len(job_ids):
            raise SystemExit(f"not every job completed with {k} shards")
        seconds = max(part["ended"] for part in parts) - min(part["began"] for part in parts)
        tasks = len(job_ids) * tasks_per_job
        return {
            "shards": k,
            "seconds": seconds,
            "jobs_per_shard": [part["jobs"] for part in parts],
            "cpu_ms_per_task": 1000 * sum(part["cpu"] for part in parts) / tasks,
            "machine_busy": busy[0] / busy[1] if busy[1] else 0.0,
            "shard_rss_mib": max(part["rss"] for part in parts) / 2**20,
        }

    def close(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            pipe.send(None)
            process.join(timeout=30)


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far (/proc/stat): every process, the shards' and others'."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def store_urls(kind: str, directory: Path, k: int, postgres: str) -> list[str]:
    """K stores for a round: a fresh SQLite file per shard, or the one shared PostgreSQL database K times."""
    if kind == "postgres":
        return [postgres] * k
    stamp = time.monotonic_ns()
    return [f"sqlite:///{directory / f'shard-{stamp}-{index}.db'}" for index in range(k)]


def summary(rounds: list[dict[str, Any]], tasks: int, jobs: int) -> dict[str, Any]:
    seconds = statistics.median(entry["seconds"] for entry in rounds)
    return {
        "seconds": [round(entry["seconds"], 3) for entry in rounds],
        "state_changes_per_second": round(tasks * CHANGES_PER_TASK / seconds, 1),
        "tasks_per_second": round(tasks / seconds, 1),
        "jobs_per_second": round(jobs / seconds, 1),
        "cpu_ms_per_task": round(statistics.median(entry["cpu_ms_per_task"] for entry in rounds), 3),
        # Of all the machine's cores, the share busy during the round (2 cores: 1.0 is both, whoever used them).
        "machine_busy": round(statistics.median(entry["machine_busy"] for entry in rounds), 2),
        "jobs_per_shard": rounds[-1]["jobs_per_shard"],
        "largest_shard_rss_mib": round(max(entry["shard_rss_mib"] for entry in rounds), 1),
    }


def measure(args: argparse.Namespace, shards: Shards, directory: Path, postgres: str) -> dict[str, Any]:
    tasks, jobs = args.jobs * args.tasks_per_job, args.jobs
    results: dict[str, Any] = {}
    for kind in args.stores:
        top = max(args.shards)  # warm-up: every shard process once (imports done, caches filled)
        shards.round(store_urls(kind, directory, top, postgres), [new_id() for _ in range(top * 4)], 2, args.slots)
        rounds: dict[int, list[dict[str, Any]]] = {k: [] for k in args.shards}
        for _ in range(args.rounds):
            for k in args.shards:  # interleaved: the machine's load hits every K alike
                ids = [new_id() for _ in range(jobs)]  # the router makes the ids, as the API would
                rounds[k].append(
                    shards.round(store_urls(kind, directory, k, postgres), ids, args.tasks_per_job, args.slots)
                )
        results[kind] = {str(k): summary(rounds[k], tasks, jobs) for k in args.shards}
        print(json.dumps({kind: results[kind]}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sharding_bench", description=__doc__)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4], help="the Ks (default 1 2 4; 1 first)")
    parser.add_argument("--jobs", type=int, default=400, help="jobs per round, spread over the shards (400)")
    parser.add_argument("--tasks-per-job", type=int, default=10, help="each job a parallel of this many (10)")
    parser.add_argument("--slots", type=int, default=50, help="the queue's slots, split between the shards (50)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgres"), default=["sqlite"])
    args = parser.parse_args()
    if args.shards[0] != 1:
        parser.error("--shards must start with 1: the baseline")
    load = [os.getloadavg()]
    shards = Shards(max(args.shards))  # forked first, before any connection is opened here
    try:
        with tempfile.TemporaryDirectory(prefix="tork-shard-bench-") as tmp, postgres_url(args.stores) as postgres:
            results = measure(args, shards, Path(tmp), postgres)
    finally:
        shards.close()
    load.append(os.getloadavg())
    report = {"settings": vars(args), "cpus": os.cpu_count(), "load_average": load, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sharding_bench.json").write_text(json.dumps(report, indent=2))


@contextmanager
def postgres_url(stores: list[str]) -> Iterator[str]:
    """A fresh database on the test server (make postgres) when asked for, its schema made once here."""
    if "postgres" not in stores:
        yield ""
        return
    from tests.postgres import fresh_database

    with fresh_database("tork_shard_bench") as url:
        Store(url).close()  # the schema, before K shards open it at once
        yield url


if __name__ == "__main__":
    main()
