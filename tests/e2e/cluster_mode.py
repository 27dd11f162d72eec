"""Run as a script: a Ray cluster (head + a queue node), `tork-ray run coordinator` against it (as cluster.yaml's
head start command does), then the seed example over HTTP through Ray Serve; then, on the same cluster, the
placement checks (tests/e2e/placement.py). Prints a JSON report. A separate process, because a test session
already has its own Ray (two clusters in one process fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import ray
from ray import serve
from ray.cluster_utils import Cluster

from tests.e2e.placement import check_placement
from tests.engine import free_port
from tork_ray.placement import head_resources

ROOT = Path(__file__).resolve().parents[2]
TORK_RAY = Path(sys.executable).parent / "tork-ray"


def main() -> dict[str, Any]:
    """Cluster mode, then the placement checks (tests/e2e/placement.py) on the same cluster: one start, not two."""
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "resources": head_resources()}
    )
    worker = cluster.add_node(num_cpus=1, resources={"queue:default": 2})
    cluster.wait_for_nodes()
    try:
        report = run_cluster_mode(cluster)
        report["placement"] = check_placement(cluster, worker)
        return report
    finally:
        cluster.shutdown()


def run_cluster_mode(cluster: Cluster) -> dict[str, Any]:
    port = free_port()
    namespace = f"tork_cluster_{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "TORK_RAY_ADDRESS": cluster.address,
        "TORK_RAY_NAMESPACE": namespace,
        "TORK_DATA_DIR": tempfile.mkdtemp(),
        "TORK_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
    }
    try:
        began = time.monotonic()
        started = subprocess.run(
            [str(TORK_RAY), "run", "coordinator"], env=env, capture_output=True, text=True, timeout=240
        )
        report: dict[str, Any] = {
            "exit": started.returncode,
            "stderr": started.stderr[-3000:],
            "deploySeconds": round(time.monotonic() - began, 1),
        }
        if started.returncode != 0:
            return report
        # The coordinator actor and the Serve app outlive the command that started them.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            report["health"] = http.get("/health").json()
            body = (ROOT / "examples" / "hello.yaml").read_bytes()
            job_id = http.post("/jobs", content=body, headers={"Content-Type": "text/yaml"}).json()["id"]
            deadline = time.monotonic() + 90
            job: dict[str, Any] = {}
            while time.monotonic() < deadline:
                job = http.get(f"/jobs/{job_id}").json()
                if job.get("state") in ("COMPLETED", "FAILED"):
                    break
                time.sleep(0.2)
            report["job"] = {"state": job.get("state"), "tasks": job.get("context", {}).get("tasks")}
        return report
    finally:  # the coordinator mode's Serve app goes: the placement checks deploy their own
        ray.init(address=cluster.address, namespace=namespace, configure_logging=False, log_to_driver=False)
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    print(json.dumps(main()))
