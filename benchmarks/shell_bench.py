"""`python -m benchmarks.shell_bench`: what the engine itself adds to a trivial task (the shell runtime, `run:
"true"`), against raw subprocesses and raw Ray tasks, in one run on one Ray, rounds interleaved.

Two engines on that Ray, each with a queue of its own and 2 slots: `worker.executor = node` (an executor actor per
node and queue, the default; results key `tork_ray_node`) and `worker.executor = task` (a Ray task per Tork task;
`tork_ray`). The raw baselines use a third queue.
Sequential: one job of `--tasks` tasks over HTTP (`wait`: the answer comes when the job ends) against as many
`bash -c true` one after another, and as many Ray tasks (each runs that subprocess) one after another.
Fan-out: one job with a `parallel` of `--fanout` tasks on 2 slots against as many subprocesses on 2 threads and as
many Ray tasks submitted at once (queue resource: 2 run at a time). Also, after those rounds, the executor design
raw: one long-lived actor holding both slots, one call per task (`ray_actor`), and, for the fan-out, the same
actor sent batches of 20 tasks whose results come back together (`ray_actor_batched`). Figures go to
results/shell_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import ray

from benchmarks.engine import bench_settings, engine_api, run_job
from tork_ray.settings import RuntimeSettings, WorkerSettings
from tork_ray.standalone import ray_started

RESULTS = Path(__file__).resolve().parent / "results"
SLOTS = 2
BATCH = 20  # tasks per call of the batched executor
TRUE = ["bash", "-c", "true"]


# Each engine's own queue resource (an executor holds all of its queue's slots on a node), and the key its
# figures go under, by worker.executor.
QUEUES = {"task": "default", "node": "node"}
SIDES = {"task": "tork_ray", "node": "tork_ray_node"}


def sequential_job(count: int, queue: str = "default") -> str:
    tasks = "".join(f"  - name: t{i}\n    queue: {queue}\n    run: 'true'\n" for i in range(count))
    return f"name: sequential\nwait:\n  timeout: 10m\ntasks:\n{tasks}"


def parallel_job(count: int, queue: str = "default") -> str:
    tasks = "".join(f"        - name: p{i}\n          queue: {queue}\n          run: 'true'\n" for i in range(count))
    return f"name: fan-out\nwait:\n  timeout: 10m\ntasks:\n  - name: fan\n    parallel:\n      tasks:\n{tasks}"


@ray.remote(num_cpus=0, max_retries=0)
def raw_ray_task() -> int:
    return subprocess.run(TRUE, check=False).returncode


RAW_QUEUE = "raw"


def raw_ray_options() -> Any:
    return raw_ray_task.options(resources={f"queue:{RAW_QUEUE}": 1})


@ray.remote(num_cpus=0, max_restarts=0)
class Executor:
    """The alternative design, raw: one long-lived actor per node holding the queue's slots, a call per task
    (`run`), or a call per batch of tasks, their results answered together (`run_batch`)."""

    def __init__(self) -> None:
        self._slots = threading.Semaphore(SLOTS)  # the queue's slots, however many calls run at once

    def run(self) -> int:
        with self._slots:
            return subprocess.run(TRUE, check=False).returncode

    def run_batch(self, count: int) -> list[int]:
        with ThreadPoolExecutor(SLOTS) as pool:
            return list(pool.map(lambda _: self.run(), range(count)))


def raw_executor() -> Any:
    return Executor.options(resources={f"queue:{RAW_QUEUE}": SLOTS}, max_concurrency=SLOTS).remote()


def raw_actor_seq(actor: Any, count: int) -> None:
    for _ in range(count):
        ray.get(actor.run.remote())


def raw_actor_fan(actor: Any, count: int) -> None:
    ray.get([actor.run.remote() for _ in range(count)])


def raw_actor_batched_fan(actor: Any, count: int) -> None:
    """Batches of BATCH tasks, all sent at once: what a coordinator sending each loop turn's ready tasks to a
    node's executor in one call, and getting their results in one answer, would cost Ray."""
    sizes = [min(BATCH, count - start) for start in range(0, count, BATCH)]
    ray.get([actor.run_batch.remote(size) for size in sizes])


def raw_subprocess_seq(count: int) -> None:
    for _ in range(count):
        subprocess.run(TRUE, check=True)


def raw_subprocess_fan(count: int) -> None:
    with ThreadPoolExecutor(SLOTS) as pool:
        list(pool.map(lambda _: subprocess.run(TRUE, check=True), range(count)))


def raw_ray_seq(count: int) -> None:
    task = raw_ray_options()
    for _ in range(count):
        ray.get(task.remote())


def raw_ray_fan(count: int) -> None:
    task = raw_ray_options()
    ray.get([task.remote() for _ in range(count)])


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def interleave(sides: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds per round for each side, sides taking turns within every round."""
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            seconds[name].append(timed(fn))
    return seconds


def summary(kind: str, count: int, seconds: dict[str, list[float]]) -> dict[str, Any]:
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base = medians["subprocess"]
    return {
        "scenario": kind,
        "tasks": count,
        "seconds": seconds,
        "median_seconds": {name: round(value, 4) for name, value in medians.items()},
        "per_task_ms": {name: round(value / count * 1000, 3) for name, value in medians.items()},
        "added_per_task_ms": {name: round((value - base) / count * 1000, 3) for name, value in medians.items()},
        "tasks_per_second": {name: round(count / value, 1) for name, value in medians.items()},
    }


def measure(engines: dict[str, httpx.Client], tasks: int, fanout: int, rounds: int) -> list[dict[str, Any]]:
    """`engines`: an HTTP client per worker.executor ("task", "node"), each engine serving its queue of QUEUES."""
    for executor, http in engines.items():  # warm-up: Ray workers or executors, the runtime, the first submits
        run_job(http, sequential_job(4, QUEUES[executor]))
        run_job(http, parallel_job(SLOTS * 2, QUEUES[executor]))
    raw_ray_fan(SLOTS * 2)

    def engine_sides(make_job: Callable[[int, str], str], count: int) -> dict[str, Callable[[], Any]]:
        return {
            SIDES[executor]: partial(run_job, http, make_job(count, QUEUES[executor]))
            for executor, http in engines.items()
        }

    sequential = interleave(
        {
            "subprocess": lambda: raw_subprocess_seq(tasks),
            "ray": lambda: raw_ray_seq(tasks),
            **engine_sides(sequential_job, tasks),
        },
        rounds,
    )
    fan = interleave(
        {
            "subprocess": lambda: raw_subprocess_fan(fanout),
            "ray": lambda: raw_ray_fan(fanout),
            **engine_sides(parallel_job, fanout),
        },
        rounds,
    )
    # The raw executor holds every slot of the raw queue: measured after the raw Ray tasks' rounds, on its own.
    actor = raw_executor()
    raw_actor_fan(actor, SLOTS * 2)
    sequential |= interleave({"ray_actor": lambda: raw_actor_seq(actor, tasks)}, rounds)
    fan |= interleave(
        {
            "ray_actor": lambda: raw_actor_fan(actor, fanout),
            "ray_actor_batched": lambda: raw_actor_batched_fan(actor, fanout),
        },
        rounds,
    )
    ray.kill(actor)
    return [summary("sequential", tasks, sequential), summary("fan-out", fanout, fan)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shell_bench", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100, help="sequential: tasks in the one job (default 100)")
    parser.add_argument("--fanout", type=int, default=200, help="fan-out: tasks of the parallel (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--start-report-delay",
        default=WorkerSettings.start_report_delay,
        help="worker.start_report_delay of the engine (default %(default)s; 0: every start reported at once)",
    )
    parser.add_argument(
        "--executors",
        nargs="+",
        default=["task", "node"],
        choices=("task", "node"),
        help="worker.executor of the engines measured (default both, in the same run)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="tork-bench-") as data, ExitStack() as stack:
        queues = {QUEUES[executor]: SLOTS for executor in args.executors} | {RAW_QUEUE: SLOTS}
        engines: dict[str, httpx.Client] = {}
        for executor in args.executors:
            worker = WorkerSettings(start_report_delay=args.start_report_delay, executor=executor)
            settings = bench_settings(Path(data) / executor, queues, RuntimeSettings(type="shell"), worker)
            if not engines:
                stack.enter_context(ray_started(settings))
            engines[executor] = stack.enter_context(engine_api(settings))
        results = measure(engines, args.tasks, args.fanout, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "shell_bench.json").write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    for result in results:
        print(json.dumps({k: result[k] for k in ("scenario", "per_task_ms", "added_per_task_ms", "tasks_per_second")}))


if __name__ == "__main__":
    main()
