"""`python -m benchmarks.ray_owner_bench`: what Ray itself holds in the coordinator's process per task in flight.

live_tasks_bench measures the Engine's memory per RUNNING task without Ray; in the coordinator each such task is
also a Ray task it owns (its ObjectRef, and Ray's record of the task in the owner's core worker, kept for
retries until it ends). This submits `--tasks` tasks of the coordinator's shape from an async actor with
num_cpus=0 (as the coordinator is), each with a RunRequest as its argument, on a queue resource that no node has,
so none can start and every one stays in flight; the actor's RSS is read before and after (/proc/self/statm), and
the delta over the count is Ray's memory per task in flight on the owner's side (a running task's record is the
same; the raylet's and the worker's share are elsewhere, not counted). Then the tasks are cancelled.
Results: results/ray_owner_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import ray

from tork_ray.coordinator.request import build_request
from tork_ray.domain.models import new_id

RESULTS = Path(__file__).resolve().parent / "results"


@ray.remote(num_cpus=0, max_retries=0)
def run_nothing(request: Any) -> dict[str, str]:
    return {"result": ""}


@ray.remote(num_cpus=0)
class Owner:
    """Stands for the coordinator: an async actor that owns the tasks it submits and awaits each."""

    def __init__(self) -> None:
        self.refs: list[Any] = []
        self.waiters: list[asyncio.Task[Any]] = []

    def rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    async def launch(self, count: int, resource: str) -> float:
        began = time.perf_counter()
        spec = {"name": "t", "run": "true"}
        launcher = run_nothing.options(resources={resource: 1})
        for _ in range(count):
            ref = launcher.remote(build_request(new_id(), new_id(), spec, "bench"))
            self.refs.append(ref)
            self.waiters.append(asyncio.ensure_future(self._await(ref)))  # as the dispatcher awaits each
        return time.perf_counter() - began

    async def _await(self, ref: Any) -> None:
        with contextlib.suppress(Exception):  # cancelled at the end
            await ref

    async def cancel_all(self) -> int:
        for ref in self.refs:
            ray.cancel(ref)
        await asyncio.gather(*self.waiters)
        return len(self.refs)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_owner_bench", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    load = [os.getloadavg()]
    # address="local": a Ray of its own, never another run's cluster on this machine.
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        owner = Owner.remote()  # type: ignore[attr-defined]
        ray.get(owner.launch.remote(50, "queue:bench-warm-up"))  # imports and caches, not counted
        before = ray.get(owner.rss.remote())
        seconds = ray.get(owner.launch.remote(args.tasks, "queue:bench-nowhere"))
        time.sleep(2)  # the submissions settle (lease requests sent, specs kept)
        after = ray.get(owner.rss.remote())
        ray.get(owner.cancel_all.remote())
    finally:
        ray.shutdown()
    load.append(os.getloadavg())
    report = {
        "tasks": args.tasks,
        "load_average": load,
        "submit_seconds": round(seconds, 2),
        "owner_bytes_per_task_in_flight": round((after - before) / args.tasks),
        "owner_mib_in_flight": round((after - before) / 2**20, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_owner_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
