"""A task's first log part in a wide job against one in a small job: first parts stored per second on SQLite,
rounds interleaved. Each task's first part builds its redaction guard from the job's secrets and secret-keyed
values (store/logguard.py), and the job's document holds every child's definition of a `parallel`: read once
per job, the wide job's first parts cost what the small one's do; read once per task, they grow with the job.
`python -m benchmarks.log_parts_bench`; figures go to benchmarks/results/log_parts_bench.json."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.store import Store

RESULTS = Path(__file__).parent / "results"


def wide_job(children: int) -> Job:
    """A job of one `parallel` of `children` tasks, as submitted: every child's definition in its document."""
    definitions = [{"name": f"child {i}", "image": "busybox", "run": f"echo {i}"} for i in range(children)]
    return Job(name="wide", state=JobState.RUNNING, secrets={"token": "s3cret-token"},
               tasks=[{"name": "fan out", "parallel": {"tasks": definitions}}], task_count=1)  # fmt: skip


def small_job() -> Job:
    return Job(name="small", state=JobState.RUNNING, secrets={"token": "s3cret-token"},
               tasks=[{"name": "one", "image": "busybox", "run": "echo 1"}], task_count=1)  # fmt: skip


def running_tasks(store: Store, job: Job, count: int) -> list[Task]:
    tasks = [
        Task(job_id=job.id, position=1, name=f"t{i}", state=TaskState.RUNNING, spec={"run": f"echo {i}"})
        for i in range(count)
    ]
    store.save(jobs=[job], tasks=tasks)
    return tasks


def first_parts_per_second(store: Store, tasks: list[Task]) -> float:
    started = time.perf_counter()
    for task in tasks:
        store.append_log(task.id, "hello from a task\n")
    return len(tasks) / (time.perf_counter() - started)


def measure(children: int, tasks: int, rounds: int) -> dict[str, Any]:
    wide_rates: list[float] = []
    small_rates: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/tork.db")
        try:
            for _ in range(rounds):  # interleaved: a noisy moment hits both
                small_rates.append(first_parts_per_second(store, running_tasks(store, small_job(), tasks)))
                wide_rates.append(first_parts_per_second(store, running_tasks(store, wide_job(children), tasks)))
        finally:
            store.close()
    return {
        "children": children,
        "tasks": tasks,
        "rounds": rounds,
        "wide_first_parts_per_second": round(statistics.median(wide_rates), 1),
        "small_first_parts_per_second": round(statistics.median(small_rates), 1),
        "wide_runs": [round(r, 1) for r in wide_rates],
        "small_runs": [round(r, 1) for r in small_rates],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--children", type=int, default=5000, help="children of the wide job's parallel")
    parser.add_argument("--tasks", type=int, default=300, help="tasks whose first part is stored, per round and job")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report = measure(args.children, args.tasks, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "log_parts_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
