"""The coordinator actor killed during a burst of submissions and completions: it restarts, rebuilds from the
store, and every job a client was told was accepted completes; a submission refused meanwhile says why (503). On
both stores: recovery reads each back."""

from __future__ import annotations

import threading
from collections import Counter
from functools import partial
from typing import Any

import httpx
import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.polling import poll_until

SUBMITTERS = 3
PER_SUBMITTER = 5
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
JOB = {
    "name": "burst",
    "tasks": [
        # No network needed: none to depend on (and no bridge to set up per container).
        {"name": "one", "image": TEST_IMAGE, "run": "echo -n one > $TORK_OUTPUT", "networks": ["none"]},
        {"name": "two", "image": TEST_IMAGE, "run": "echo -n two > $TORK_OUTPUT", "networks": ["none"]},
    ],
}


class Submitter(threading.Thread):
    """Submits `count` jobs once `go` is set; a refused submission is tried again (as a client would)."""

    def __init__(self, base_url: str, go: threading.Event, count: int) -> None:
        super().__init__(daemon=True)
        self.base_url, self.go, self.count = base_url, go, count
        self.accepted: list[str] = []
        self.refused: list[tuple[int, str]] = []  # (status, message)

    def run(self) -> None:
        self.go.wait()
        with httpx.Client(base_url=self.base_url, timeout=120) as http:
            while len(self.accepted) < self.count:
                response = http.post("/jobs", json=JOB)
                if response.status_code == 200:
                    self.accepted.append(response.json()["id"])
                else:
                    self.refused.append((response.status_code, response.json().get("message", response.text)))


def test_a_coordinator_killed_mid_burst_loses_no_accepted_job(live_engine_both: LiveEngine, docker_client: Any) -> None:
    live_engine = live_engine_both
    first = [live_engine.submit_json(JOB)["id"] for _ in range(4)]
    go = threading.Event()
    submitters = [Submitter(str(live_engine.http.base_url), go, PER_SUBMITTER) for _ in range(SUBMITTERS)]
    for submitter in submitters:
        submitter.start()
    # Killed once jobs are completing and the burst of submissions is on: some answered, more in flight.
    poll_until(lambda: _count(live_engine, first, "COMPLETED") >= 1, 60, "a job done before the kill")
    go.set()
    poll_until(lambda: sum(len(s.accepted) for s in submitters) >= SUBMITTERS, 60, "the burst under way")
    ray.kill(live_engine.coordinator, no_restart=False)  # SIGKILL; Ray restarts it with its memory gone
    for submitter in submitters:
        submitter.join(timeout=180)
        assert not submitter.is_alive(), "a submitter hung"
    jobs = first + [job for s in submitters for job in s.accepted]
    refused = [r for s in submitters for r in s.refused]
    print(f"{len(jobs)} jobs accepted; refused meanwhile (then accepted on retry): {Counter(refused)}")
    # Whatever was refused while the actor restarted was a 503 saying so, never a 500 or a hang.
    assert all(status == 503 and "coordinator" in message for status, message in refused), refused

    finished = poll_until(lambda: _all_finished(live_engine, jobs), 180, "every accepted job to finish")
    problems = [
        f"{job['id']}: {job['state']} {[(t['name'], t['state'], t.get('redelivered')) for t in job['execution']]}"
        for job in finished
        if job["state"] != "COMPLETED"
        or sorted((t["name"], t["state"], t.get("result")) for t in job["execution"])
        != [("one", "COMPLETED", "one"), ("two", "COMPLETED", "two")]
    ]
    assert not problems, "\n".join(problems)
    # The attempts the kill cut short were found by their labels and removed; the others removed themselves.
    for job in finished:
        labelled = {"label": f"tork_ray.job-id={job['id']}"}
        poll_until(partial(_no_containers, docker_client, labelled), 30, f"{job['id']} cleaned")


def _no_containers(docker_client: Any, labelled: dict[str, str]) -> bool:
    return not docker_client.containers.list(all=True, filters=labelled, ignore_removed=True)


def _count(engine: LiveEngine, jobs: list[str], state: str) -> int:
    return sum(engine.http.get(f"/jobs/{job_id}").json()["state"] == state for job_id in jobs)


def _all_finished(engine: LiveEngine, jobs: list[str]) -> list[dict[str, Any]] | None:
    found = [engine.http.get(f"/jobs/{job_id}").json() for job_id in jobs]
    return found if all(job["state"] in TERMINAL for job in found) else None
