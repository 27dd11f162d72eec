"""`python -m benchmarks.docker_bench`: container tasks through tork_ray against the raw Docker SDK (sequential and
fan-out, rounds interleaved); prints the figures, saves them to results/docker_bench.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from benchmarks.engine import live_engine, run_job
from benchmarks.runtime import fanout, fanout_job, raw_container, sequential, sequential_job

RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"sequential": ("time_ratio", "<=", 1.10), "fan-out": ("throughput_ratio", ">=", 0.90)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.docker_bench", description=__doc__)
    parser.add_argument("--image", default=os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest"))
    parser.add_argument("--tasks", type=int, default=20, help="sequential: tasks in the one job (default 20)")
    parser.add_argument("--fanout", type=int, default=50, help="fan-out: items of the each (default 50)")
    parser.add_argument("--slots", type=int, default=4, help="fan-out: queue slots = raw threads (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per side (default 3)")
    return parser.parse_args()


def verdict(summary: dict[str, Any]) -> str:
    key, op, goal = GOALS[summary["name"]]
    value = summary[key]
    met = value <= goal if op == "<=" else value >= goal
    return f"{key} {value:.3f} (goal {op} {goal:.2f}: {'met' if met else 'MISSED'})"


def main() -> None:
    args = parse_args()
    client = docker.from_env()
    client.images.get(args.image)
    with tempfile.TemporaryDirectory(prefix="tork-bench-") as data, live_engine(Path(data), args.slots) as http:
        # Warm-up, not measured: Ray worker processes, the Docker client, the first container of each side.
        raw_container(client, args.image)
        run_job(http, sequential_job(args.image, 2))
        run_job(http, fanout_job(args.image, args.slots))
        results = [
            sequential(http, client, args.image, args.tasks, args.rounds).summary(),
            fanout(http, client, args.image, args.fanout, args.slots, args.rounds).summary(),
        ]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "docker": client.version()["Version"]},
        "settings": vars(args),
        "results": results,
    }
    for summary in results:
        print(
            f"{summary['name']:>10}: {summary['containers']} containers  raw {summary['raw_median']:.2f}s "
            f"({summary['raw_per_second']}/s)  tork_ray {summary['tork_ray_median']:.2f}s "
            f"({summary['tork_ray_per_second']}/s)  {verdict(summary)}"
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "docker_bench.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
