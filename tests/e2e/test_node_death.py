"""A worker node dies with tasks on it: each is retried by its rules or fails saying the node or its worker
died; a node that joins later serving the queue runs the backlog; nothing is left behind in Docker. Two engines
share the run, one on SQLite and one on PostgreSQL (each its own queue): one node death checks both stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.e2e.test_multinode import ROOT
from tests.postgres import fresh_database

LOST = (
    "task lost: the worker process running the task died (killed, or crashed) (WorkerCrashedError)",
    "task lost: the node running the task died or left the cluster (NodeDiedError)",
)


def test_a_dead_node_s_tasks_follow_their_retry_rules_and_a_new_node_takes_the_backlog(docker_client: Any) -> None:
    # The GCS declares a silent node dead after 3 missed health checks 0.5 s apart, not 5 at 3 s: same path.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_health_check_period_ms": "500"}
    env |= {"RAY_health_check_failure_threshold": "3"}
    with fresh_database("node_death") as url:
        command = [sys.executable, "-m", "tests.e2e.node_death", url]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    reports = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(reports, indent=1))
    assert sorted(reports) == ["postgres", "sqlite"]
    for kind, report in reports.items():
        print(f"checking the engine on {kind}")
        _check(report)


def _check(report: dict[str, Any]) -> None:
    jobs, doomed, fresh = report["jobs"], report["nodes"]["doomed"], report["nodes"]["fresh"]
    # While no node served the queue its three tasks waited (in the backlog, or a moment handed to Ray), not lost.
    backlog = report["backlog"]
    assert backlog["subscribers"] == 0 and backlog["size"] + backlog["running"] == 3, backlog

    retried = jobs["retried"]
    assert retried["state"] == "COMPLETED", retried
    lost, rerun = retried["tasks"]
    assert (lost["state"], lost["node"]) == ("FAILED", doomed) and lost["error"] in LOST, lost
    assert (rerun["state"], rerun["node"], rerun["result"]) == ("COMPLETED", fresh, "ok"), rerun

    alone = jobs["alone"]
    assert alone["state"] == "FAILED" and alone["error"] in LOST, alone
    assert [(t["state"], t["node"], t["error"]) for t in alone["tasks"]] == [("FAILED", doomed, alone["error"])]

    for name in ("waiting 1", "waiting 2"):  # never started before the node died: run once, on the new node
        assert jobs[name]["state"] == "COMPLETED", jobs[name]
        assert [(t["state"], t["node"], t["redelivered"]) for t in jobs[name]["tasks"]] == [("COMPLETED", fresh, 0)]
    # The dead node's task watchdogs removed their containers (they died with the node's workers).
    assert report["containers"] == ["none"]
