"""`python -m benchmarks.each_items_bench`: one `each` of `--items` items (issue 12: "an each of 100,000 items runs
in bounded memory"), the coordinator alone (its Engine, StateWriter and SQLite store on an asyncio loop, a no-op
worker that answers at once; no Ray, so that the figure is the coordinator's own), on 50 slots.

Measured: seconds to COMPLETED, tasks per second, and the process's resident memory before, at its peak (sampled
every 0.2 s) and after, against a `parallel` of 1,000 tasks run the same way in the same process first (the
baseline). Every child is stored when the `each` starts, but the coordinator holds only `coordinator.each.window`
of them (10,000; `--window`), the rest CREATED in the store until released: the peak is bounded by the window,
not by the items (run it with `--items 30000` and `100000`: the same peak). results/each_items_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.coordinator_bench import bench_engine, close_engine, folded_worker
from benchmarks.memory_bench import memory_kib
from tork_ray.domain.states import JobState
from tork_ray.settings import EACH_WINDOW
from tork_ray.spec.parse import parse_job

RESULTS = Path(__file__).resolve().parent / "results"
SLOTS = 50
SAMPLE_SECONDS = 0.2


def rss_mib() -> float:
    return memory_kib(os.getpid())[0] / 1024


def each_body(items: int, concurrency: int) -> dict[str, Any]:
    each: dict[str, Any] = {"list": f"{{{{ sequence(0, {items}) }}}}", "task": {"name": "item", "run": "true"}}
    if concurrency:
        each["concurrency"] = concurrency
    return {"name": "each", "tasks": [{"name": "e", "each": each}]}


def parallel_body(tasks: int) -> dict[str, Any]:
    return {"name": "parallel", "tasks": [{"name": "p", "parallel": {"tasks": [{"name": "t", "run": "true"}] * tasks}}]}


async def run(directory: Path, body: dict[str, Any], tasks: int, window: int) -> dict[str, float]:
    """One job on a fresh engine: seconds, tasks/s, RSS before, peak and after (MiB)."""
    engine = bench_engine(f"sqlite:///{directory / f'engine-{time.monotonic_ns()}.db'}", SLOTS, folded_worker)
    engine.composites.each_window = window
    before = peak = rss_mib()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mib())
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.create_task(sample())
    began = time.perf_counter()
    job = engine.submit(parse_job(json.dumps(body).encode(), "application/json"))
    done = await engine.wait_job(job.id, 3600)
    seconds = time.perf_counter() - began
    sampler.cancel()
    peak = max(peak, rss_mib())
    if done is None or done.state is not JobState.COMPLETED:
        raise SystemExit(f"benchmark job did not complete: {done.state if done else 'timed out'}")
    close_engine(engine)
    return {
        "seconds": round(seconds, 2),
        "tasks_per_second": round(tasks / seconds, 1),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak, 1),
        "rss_after_mib": round(rss_mib(), 1),
        "peak_growth_kib_per_task": round((peak - before) * 1024 / tasks, 2),
    }


async def measure(items: int, concurrency: int, baseline_tasks: int, window: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tork-each-") as tmp:
        directory = Path(tmp)
        baseline = await run(directory, parallel_body(baseline_tasks), baseline_tasks, window)
        each = await run(directory, each_body(items, concurrency), items, window)
    return {
        "items": items,
        "concurrency": concurrency,
        "window": window,
        "slots": SLOTS,
        "baseline": {"parallel_tasks": baseline_tasks, **baseline},
        "each": each,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.each_items_bench", description=__doc__)
    parser.add_argument("--items", type=int, default=100_000, help="items of the each (default 100,000)")
    parser.add_argument("--concurrency", type=int, default=0, help="each.concurrency (default 0: none)")
    parser.add_argument("--baseline-tasks", type=int, default=1000, help="tasks of the baseline parallel")
    parser.add_argument("--window", type=int, default=EACH_WINDOW, help="coordinator.each.window (default 10,000)")
    args = parser.parse_args()
    report = asyncio.run(measure(args.items, args.concurrency, args.baseline_tasks, args.window))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "each_items_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
