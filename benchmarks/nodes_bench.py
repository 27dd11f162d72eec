"""`python -m benchmarks.nodes_bench`: what reading the cluster's nodes costs the coordinator as nodes are added.

The dispatcher reads `ray.nodes()` (a GCS call, answered and parsed on the coordinator's event loop) at most every
2 s to know each queue's slots (coordinator/dispatch.py `_refresh_capacity`), and the node sweeper reads it again
every 2 s off the loop. This starts a local multi-node cluster (ray.cluster_utils.Cluster: a head and `--nodes`
worker nodes of 0 CPUs, each serving a queue), and for each node count times `ray.nodes()` and `queue_capacity`
over its answer (median of `--calls`), so the cost per node can be read off the slope. A 1,000-node answer is then
made by copying the real nodes' records and timed through `queue_capacity` alone (the Python part only: the GCS
call and its parsing at 1,000 nodes are extrapolated from the slope, not measured). Results:
results/nodes_bench.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from tork_ray.coordinator.dispatch import queue_capacity, queue_resource

RESULTS = Path(__file__).resolve().parent / "results"


def median_ms(call: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times), 3)


def synthetic(nodes: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` node records made from real ones (fresh ids), as ray.nodes() would list them."""
    made = []
    for index in range(count):
        node = copy.deepcopy(nodes[index % len(nodes)])
        node["NodeID"] = f"{index:056x}"
        made.append(node)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nodes_bench", description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 8], help="worker node counts (1 4 8)")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--synthetic", type=int, default=1000, help="records of the made-up answer (1,000)")
    args = parser.parse_args()
    load = [os.getloadavg()]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    ray.init(address=cluster.address)
    rows = []
    try:
        added = 0
        for count in sorted(args.nodes):
            while added < count:
                cluster.add_node(num_cpus=0, resources={queue_resource("default"): 2})
                added += 1
            cluster.wait_for_nodes()
            listed = ray.nodes()
            rows.append({
                "nodes_listed": len(listed),
                "ray_nodes_ms": median_ms(ray.nodes, args.calls),
                "queue_capacity_ms": median_ms(partial(queue_capacity, listed), args.calls),
                "answer_bytes_as_json": len(json.dumps(listed, default=str)),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
        made = synthetic(ray.nodes(), args.synthetic)
        made_ms = median_ms(partial(queue_capacity, made), args.calls)
    finally:
        ray.shutdown()
        cluster.shutdown()
    first, last = rows[0], rows[-1]
    spread = last["nodes_listed"] - first["nodes_listed"]
    slope = (last["ray_nodes_ms"] - first["ray_nodes_ms"]) / spread if spread else 0.0
    load.append(os.getloadavg())
    report = {
        "settings": vars(args),
        "load_average": load,
        "rows": rows,
        "ray_nodes_ms_per_node": round(slope, 4),
        f"queue_capacity_ms_{args.synthetic}_nodes": made_ms,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nodes_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}))


if __name__ == "__main__":
    main()
