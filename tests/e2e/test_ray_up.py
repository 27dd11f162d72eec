"""`ray up cluster.yaml` for real: scripts/ray-up-check.sh brings up a head and a worker over SSH (loopback
"hosts" in namespaces of their own) with a PostgreSQL server of its own as the store, submits a job to the head's
API, reads its result back from that server, and takes the cluster down again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


# About 3 minutes here; more on a loaded machine, where a worker's `ray start` can time out (Ray waits 30 s for
# its raylet) and cluster.yaml's start command tries it again.
@pytest.mark.timeout(900)
def test_ray_up_runs_a_job_on_the_worker_and_ray_down_ends_it(docker_client: Any) -> None:
    venv = Path(sys.executable).parent.parent
    check = [str(ROOT / "scripts" / "ray-up-check.sh"), str(venv)]
    # A session of its own: on a timeout the whole group goes, unshare included (and with it both namespaces).
    with subprocess.Popen(
        check, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=840)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    done = subprocess.CompletedProcess(check, proc.returncode, stdout, stderr)
    steps = [line for line in done.stdout.splitlines() if line.startswith("[")]
    print("\n".join(steps))  # the steps, with their times
    last = done.stdout.strip().splitlines()[-1:] or ["{}"]
    report = json.loads(last[0]) if last[0].startswith("{") else {}
    print("ray up check:", report)
    assert done.returncode == 0, (report, done.stderr[-3000:])
    assert report["health"] == "UP"
    assert report["job"] == "COMPLETED", report.get("error")
    assert report["result"] == "hello from a worker"
    assert report["taskNode"] == report["workerNode"]  # ran on the worker (the head serves no queue)
    # The head's store is the check's PostgreSQL server, and the job's result is in it.
    assert report["stored"] == {"state": "COMPLETED", "results": ["hello from a worker"]}
