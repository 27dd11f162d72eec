"""`python -m benchmarks.profile_tasks`: py-spy on every process a trivial shell task crosses, under a steady
load of sequential jobs (`run: "true"` on the shell runtime, 2 slots), so the time of one task can be broken down.

Records (as root: py-spy attaches to other processes) the coordinator actor, the Ray workers that run
`run_task`, and this process (the API under uvicorn, and the HTTP client), `--seconds` each, all at once.
Writes collapsed stacks to results/profile-<process>.txt and prints, per process, the share of samples
in the functions that matter (own time and time below them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.engine import live_engine, run_job
from benchmarks.shell_bench import SLOTS, parallel_job, sequential_job
from tork_ray.settings import RuntimeSettings, WorkerSettings

RESULTS = Path(__file__).resolve().parent / "results"
PY_SPY = Path(sys.executable).parent / "py-spy"


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below `root` (this machine runs other engines: only ours)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return found


def ray_pids(title: str) -> list[int]:
    """Our processes whose title (Ray sets `ray::<actor or task>`) starts with `title`."""
    return [pid for pid, command in descendants(os.getpid()).items() if command.startswith(title)]


def record(pid: int, name: str, seconds: int, idle: bool) -> subprocess.Popen[bytes]:
    out = RESULTS / f"profile-{name}.txt"
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds), "--format", "raw"]
    command += ["--rate", "200", "--output", str(out), "--nonblocking"]
    if idle:
        command.append("--idle")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def breakdown(path: Path, top: int) -> list[tuple[str, float]]:
    """Share of samples in which each function appears (inclusive), from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = {frame.split(" (")[0] for frame in stack.split(";")}
        for frame in frames:
            inclusive[frame] += samples
    return [(name, round(100 * n / max(total, 1), 1)) for name, n in inclusive.most_common(top)]


KINDS = (
    ("ray::Coordinator", "coordinator actor"),
    ("ray::run_task", "task workers"),
    ("ray::IDLE", "task workers"),
    ("ray::DashboardAgent", "Ray dashboard agent"),
    ("ray::RuntimeEnvAgent", "Ray runtime-env agent"),
    ("ray::", "other Ray workers"),
)


def kind_of(command: str) -> str:
    for prefix, kind in KINDS:
        if command.startswith(prefix):
            return kind
    for word in ("raylet", "gcs_server", "log_monitor", "monitor.py", "dashboard.py", "tork_ray.worker.reaper"):
        if word in command:
            return word
    return "other: " + command[:40]


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) so far of this process (the API under uvicorn, the driver, the client) and
    of every process below it, by kind."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: Counter[str] = Counter()
    processes = {
        os.getpid(): "driver + API (this process)",
        **{p: kind_of(c) for p, c in descendants(os.getpid()).items()},
    }
    for pid, kind in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        totals[kind] += (int(fields[11]) + int(fields[12])) / ticks
    return dict(totals)


def cpu_per_task(run: Callable[[], object], tasks: int) -> dict[str, float]:
    """ms of CPU per task each kind of process spent while `run` ran (processes that started meanwhile count
    from zero, those that ended are missed)."""
    before = cpu_seconds()
    run()
    after = cpu_seconds()
    spent = {kind: (after[kind] - before.get(kind, 0.0)) * 1000 / tasks for kind in after}
    return {kind: round(ms, 2) for kind, ms in sorted(spent.items(), key=lambda kv: -kv[1]) if ms > 0}


def _at(value: str | None) -> float:
    return datetime.fromisoformat(value).timestamp() if value else float("nan")


def timeline(job: dict[str, Any]) -> dict[str, float]:
    """Median gaps (ms) between the coordinator's timestamps of consecutive tasks of a sequential job:
    scheduled -> started (Ray placing the task, the worker starting it, its task_started call handled),
    started -> completed (the runtime, the result back to the coordinator), completed -> next scheduled."""
    tasks = sorted(job["execution"], key=lambda t: t["position"])
    gaps: dict[str, list[float]] = {
        "scheduled -> started": [],
        "started -> completed": [],
        "completed -> next scheduled": [],
    }
    for task, following in zip(tasks, [*tasks[1:], None], strict=True):
        gaps["scheduled -> started"].append(_at(task.get("startedAt")) - _at(task.get("scheduledAt")))
        gaps["started -> completed"].append(_at(task.get("completedAt")) - _at(task.get("startedAt")))
        if following is not None:
            gaps["completed -> next scheduled"].append(_at(following.get("scheduledAt")) - _at(task.get("completedAt")))
    return {name: round(statistics.median(values) * 1000, 2) for name, values in gaps.items() if values}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_tasks", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="py-spy's recording (0: no py-spy)")
    parser.add_argument("--tasks", type=int, default=100, help="tasks per sequential job")
    parser.add_argument("--fanout", type=int, default=200, help="tasks of the parallel")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--executor", default="node", choices=("task", "node"), help="worker.executor")
    parser.add_argument("--load", default="sequential", choices=("sequential", "fanout"), help="what runs under py-spy")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    report: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tork-prof-") as data,
        live_engine(Path(data), SLOTS, RuntimeSettings(type="shell"), WorkerSettings(executor=args.executor)) as http,
    ):
        run_job(http, sequential_job(4))
        run_job(http, parallel_job(4))
        jobs: list[dict[str, Any]] = []
        report["cpu ms per task, sequential"] = cpu_per_task(
            lambda: jobs.append(run_job(http, sequential_job(args.tasks))), args.tasks
        )
        report["timeline ms, sequential"] = timeline(jobs[-1])
        report["cpu ms per task, fan-out"] = cpu_per_task(lambda: run_job(http, parallel_job(args.fanout)), args.fanout)
        if args.seconds:
            spy(http, args.seconds, parallel_job(args.fanout) if args.load == "fanout" else sequential_job(args.tasks))
    print(json.dumps(report, indent=2))
    (RESULTS / "profile_tasks.json").write_text(json.dumps(report, indent=2))
    for path in sorted(RESULTS.glob("profile-*.txt")) if args.seconds else []:
        print(f"== {path.name}")
        for name, share in breakdown(path, args.top):
            print(f"  {share:5.1f}%  {name}")


def busy_workers(looks: int = 100) -> list[int]:
    """The worker processes seen running run_task most often (Ray names a worker by what it runs right now)."""
    seen: Counter[int] = Counter()
    for _ in range(looks):
        seen.update(pid for pid, command in descendants(os.getpid()).items() if command.startswith("ray::run_task"))
        time.sleep(0.01)  # sampling the process table, not synchronising
    return [pid for pid, _count in seen.most_common()]


def spy(http: httpx.Client, seconds: int, job: dict[str, Any]) -> None:
    """py-spy on the coordinator, the executor or two task workers, and this process while `job` runs again
    and again. The workers are recorded with --idle (wall time); the others on CPU."""
    for old in RESULTS.glob("profile-*.txt"):
        old.unlink()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            run_job(http, job)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    ours = descendants(os.getpid())
    targets = {
        "coordinator": [p for p, c in ours.items() if c.startswith("ray::Coordinator")],
        "api": [os.getpid()],
        "worker": busy_workers(),
        "executor": [p for p, c in ours.items() if c.startswith("ray::QueueExecutor")],
    }
    spies = []
    for name, pids in targets.items():
        for index, pid in enumerate(pids[:2]):
            spies.append(record(pid, f"{name}-{index}", seconds, idle=name == "worker"))
    for process in spies:
        process.wait()
    stop.set()
    loader.join()


if __name__ == "__main__":
    main()
