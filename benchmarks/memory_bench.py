"""`python -m benchmarks.memory_bench`: cold start and idle memory of the engine as `make run` starts it
(`tork-ray run standalone`, shell runtime, 2 slots on `default`), against a bare `ray.init` in the same run.

Cold start: from the process's start to the first healthy `GET /health`. Memory: the resident set (RSS, and PSS
where the kernel gives it: shared pages counted once) of the whole process tree, summed, after `--idle`
seconds idle, by kind of process. Figures go to results/memory_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from benchmarks.profile_tasks import descendants, kind_of
from tork_ray.api.background import free_port

RESULTS = Path(__file__).resolve().parent / "results"
TORK_RAY = Path(sys.executable).parent / "tork-ray"
BARE_RAY = "import ray, time, sys; ray.init(include_dashboard=False); print('up', flush=True); time.sleep(3600)"


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB of one process; PSS from smaps_rollup (0 where unreadable)."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def tree_memory(root: int) -> dict[str, Any]:
    """RSS and PSS of `root` and every process below it, in MiB, in total and by kind."""
    processes = {root: "engine (driver, API)", **{pid: kind_of(cmd) for pid, cmd in descendants(root).items()}}
    rss: Counter[str] = Counter()
    pss: Counter[str] = Counter()
    for pid, kind in processes.items():
        r, p = memory_kib(pid)
        rss[kind] += r
        pss[kind] += p
    return {
        "processes": len(processes),
        "rss_mib": round(sum(rss.values()) / 1024, 1),
        "pss_mib": round(sum(pss.values()) / 1024, 1),
        "rss_mib_by_kind": {kind: round(kib / 1024, 1) for kind, kib in rss.most_common()},
    }


def start_engine(data_dir: Path, port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    """Starts `tork-ray run standalone`; returns it and the seconds until /health answered UP."""
    env = {
        **os.environ,
        "TORK_DATA_DIR": str(data_dir),
        "TORK_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
        "TORK_RAY_NAMESPACE": f"memory_bench_{os.getpid()}",
        "TORK_RUNTIME_TYPE": "shell",
        "TORK_WORKER_QUEUES_DEFAULT": "2",
        "RAY_AUTH_MODE": "disabled",
        "RAY_ADDRESS": "local",
        **env,
    }
    log = (data_dir / "engine.log").open("ab")
    began = time.monotonic()
    process = subprocess.Popen([str(TORK_RAY), "run", "standalone"], env=env, stdout=log, stderr=log)
    deadline = began + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"engine exited with {process.returncode}; see {data_dir / 'engine.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("status") == "UP":
                return process, time.monotonic() - began
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.05)  # polling a port, not synchronising threads
    process.kill()
    raise SystemExit("engine not healthy within 180 s")


def stop(process: subprocess.Popen[Any]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def engine_side(idle: float, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tork-mem-") as data:
        port = free_port()
        process, cold = start_engine(Path(data), port, env)
        try:
            # One trivial job first: the task workers a running engine keeps count in its idle memory.
            httpx.post(f"http://127.0.0.1:{port}/jobs", json={"name": "m", "tasks": [{"name": "t", "run": "true"}]})
            time.sleep(idle)  # idle on purpose: the figure is the memory of an engine nobody uses
            return {"cold_start_seconds": round(cold, 2), **tree_memory(process.pid)}
        finally:
            stop(process)


def bare_ray_side(idle: float) -> dict[str, Any]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": "local"}
    began = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", BARE_RAY], env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()
    cold = time.monotonic() - began
    try:
        time.sleep(idle)
        return {"cold_start_seconds": round(cold, 2), **tree_memory(process.pid)}
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_bench", description=__doc__)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before measuring (default 10)")
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE for the engine's environment (experiments)")
    parser.add_argument("--task", action="store_true", help="also the engine with worker.executor = task")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    report = {"engine": engine_side(args.idle, env), "bare ray.init": bare_ray_side(args.idle)}
    if args.task:
        report["engine, a Ray task per task"] = engine_side(args.idle, {**env, "TORK_WORKER_EXECUTOR": "task"})
    report["rss_ratio"] = round(report["engine"]["rss_mib"] / report["bare ray.init"]["rss_mib"], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
