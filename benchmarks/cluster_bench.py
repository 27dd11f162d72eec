"""`python -m benchmarks.cluster_bench`: 1,000 jobs submitted at once over HTTP, on a two-node local Ray cluster
with the PostgreSQL store, against the same burst on a standalone single node with SQLite, in one run.

Each side runs in its own process (one Ray cluster per process): a `ray.cluster_utils.Cluster` of a head and a
worker node, each serving `queue:default` with `--slots` slots, the coordinator on the head and the API served
by uvicorn over it; or one local node with all the slots. The tasks run on the shell runtime (`run: "true"`), so
the figure is the engine's own, not Docker's. Wall time is from the first submit to the last job ended; all must
be COMPLETED. Results go to benchmarks/results/cluster_bench.json.

Measured here (2 cores, 4 slots each side, one run): standalone SQLite 1,000 jobs in 21.3 s (47.0 tasks/s),
the two-node cluster on PostgreSQL in 28.7 s (34.8 tasks/s): a ratio of 0.74; all 2,000 jobs COMPLETED.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results"
SUBMITTERS = 16  # HTTP clients submitting at once
JOB = {"name": "burst", "tasks": [{"name": "noop", "run": "true"}]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=2, help="queue:default slots per node (default 2)")
    parser.add_argument("--side", choices=("cluster-postgres", "standalone-sqlite"), help=argparse.SUPPRESS)
    return parser.parse_args()


def burst(url: str, jobs: int, store: Any) -> dict[str, Any]:
    """Submits `jobs` jobs from SUBMITTERS clients at once; waits until every one has ended."""
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=120) as http, ThreadPoolExecutor(SUBMITTERS) as pool:
        ids = list(pool.map(lambda _: http.post("/jobs", json=JOB).raise_for_status().json()["id"], range(jobs)))
    submitted = time.monotonic() - started
    deadline = started + 1800
    while time.monotonic() < deadline:
        counts = store.state_counts()["jobs"]
        if sum(counts.get(state, 0) for state in ("COMPLETED", "FAILED", "CANCELLED")) >= jobs:
            break
        time.sleep(0.25)
    wall = time.monotonic() - started
    counts = store.state_counts()["jobs"]
    return {
        "jobs": len(ids),
        "submit_seconds": round(submitted, 2),
        "wall_seconds": round(wall, 2),
        "tasks_per_second": round(jobs / wall, 1),
        "states": counts,
    }


def run_side(side: str, jobs: int, slots: int) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    from tork_ray.api.app import create_app
    from tork_ray.api.background import serve_in_thread
    from tork_ray.coordinator.actor import start_coordinator
    from tork_ray.placement import head_resources
    from tork_ray.settings import DatastoreSettings, RaySettings, RuntimeSettings, Settings
    from tork_ray.store.store import open_store

    queue = {"queue:default": float(slots)}
    with ExitStack() as stack:
        data_dir = Path(tempfile.mkdtemp(prefix="tork-bench-"))
        namespace = f"tork_bench_{uuid.uuid4().hex[:6]}"
        if side == "cluster-postgres":
            from tests.postgres import fresh_database

            url = stack.enter_context(fresh_database("tork_bench"))
            datastore = DatastoreSettings(type="postgres", postgres_dsn=url)
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": {**head_resources(), **queue}},
            )
            stack.callback(cluster.shutdown)
            cluster.add_node(num_cpus=1, resources=queue)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, namespace=namespace, log_to_driver=False)
            nodes = 2
        else:
            datastore = DatastoreSettings()
            ray.init(
                address="local",  # a cluster of its own, even where `ray start` runs one on this machine
                num_cpus=2,
                resources={**head_resources(), **queue},
                namespace=namespace,
                include_dashboard=False,
            )
            nodes = 1
        stack.callback(ray.shutdown)
        settings = Settings(
            data_dir=data_dir,
            queues={"default": slots},
            datastore=datastore,
            ray=RaySettings(namespace=namespace),
            runtime=RuntimeSettings(type="shell"),
        )
        coordinator = start_coordinator(settings)
        store = open_store(settings)
        api = stack.enter_context(serve_in_thread(create_app(settings, coordinator, store)))
        figures = burst(api, jobs, store)
        return {"side": side, "nodes": nodes, "slots": nodes * slots, **figures}


def main() -> None:
    args = parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.jobs, args.slots)))
        return
    sides = {}
    for side in ("standalone-sqlite", "cluster-postgres"):
        command = [sys.executable, "-m", "benchmarks.cluster_bench", "--side", side, "--jobs", str(args.jobs)]
        command += ["--slots", str(args.slots if side == "cluster-postgres" else 2 * args.slots)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        sides[side] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(sides[side]))
    base, cluster = sides["standalone-sqlite"], sides["cluster-postgres"]
    report = {
        **sides,
        "throughput_ratio": round(cluster["tasks_per_second"] / base["tasks_per_second"], 3),
        "all_completed": all(s["states"].get("COMPLETED", 0) == args.jobs for s in sides.values()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("throughput_ratio", "all_completed")}))


if __name__ == "__main__":
    main()
