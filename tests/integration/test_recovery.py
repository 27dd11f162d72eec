"""The coordinator is restartable from the store alone: kill the actor mid-job and the job carries on."""

from __future__ import annotations

from typing import Any

import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.polling import poll_until


def test_a_killed_coordinator_resumes_its_jobs(live_engine: LiveEngine, docker_client: Any) -> None:
    doc = {
        "name": "survives a coordinator crash",
        "tasks": [
            {
                "name": "nap",
                "image": TEST_IMAGE,
                # Gated: surely running when the coordinator dies, however slow this machine is today.
                "run": f"{GATED}; echo -n rested > $TORK_OUTPUT",
                "retry": {"limit": 1},
            },
            {"name": "after", "image": TEST_IMAGE, "run": "echo -n after > $TORK_OUTPUT", "var": "after"},
        ],
    }
    job_id = live_engine.http.post("/jobs", json=doc).json()["id"]
    poll_until(lambda: running_containers(docker_client, job_id), 60, "the nap's container running")

    # SIGKILL the actor's process; Ray restarts it (max_restarts=-1) with its memory gone.
    ray.kill(live_engine.coordinator, no_restart=False)

    def finished() -> bool:
        open_gates(docker_client, job_id)  # the redelivered attempt may finish
        return live_engine.http.get(f"/jobs/{job_id}").json()["state"] in ("COMPLETED", "FAILED")

    poll_until(finished, 90, "the job to finish after the coordinator's restart")
    job = live_engine.wait_for(job_id, "COMPLETED", "FAILED")
    assert job["state"] == "COMPLETED", job
    # Redelivered: the same task record ran again (coordinator.redeliveries = 1), no retry was spent.
    nap = [t for t in job["execution"] if t["name"] == "nap"]
    assert [(t["state"], t.get("redelivered")) for t in nap] == [("COMPLETED", 1)]
    assert nap[0]["result"] == "rested"
    assert job["context"]["tasks"]["after"] == "after"

    # The lost attempt's container was found by its label and removed.
    label = {"label": f"tork_ray.task-id={nap[0]['id']}"}
    poll_until(
        lambda: not docker_client.containers.list(all=True, filters=label, ignore_removed=True),
        30,
        "the lost attempt's container removed",
    )


def test_after_a_restart_queued_tasks_run_and_a_task_can_refuse_redelivery(
    live_engine: LiveEngine, docker_client: Any
) -> None:
    # Queue "other" has one slot: `first` runs, `queued` waits behind it. `first` asks not to be run again
    # after a restart (redeliveries: 0), so its retry rules decide; `queued` had not started: it simply runs.
    first = {"name": "first", "image": TEST_IMAGE, "run": GATED, "queue": "other", "redeliveries": 0}
    first["retry"] = {"limit": 1}
    queued = {"name": "queued", "image": TEST_IMAGE, "run": "echo -n ran > $TORK_OUTPUT", "queue": "other"}
    running_id = live_engine.submit_json({"name": "not redelivered", "tasks": [first]})["id"]
    poll_until(lambda: running_containers(docker_client, running_id), 60, "the first task's container running")
    queued_id = live_engine.submit_json({"name": "waiting in the queue", "tasks": [queued]})["id"]
    poll_until(
        lambda: [t["state"] for t in live_engine.http.get(f"/jobs/{queued_id}").json()["execution"]] == ["SCHEDULED"],
        timeout=30,
        what="the second task to wait in the queue",
    )

    ray.kill(live_engine.coordinator, no_restart=False)

    def first_finished() -> bool:
        open_gates(docker_client, running_id)  # its retry may finish
        return live_engine.http.get(f"/jobs/{running_id}").json()["state"] in ("COMPLETED", "FAILED")

    poll_until(first_finished, 90, "the first job to finish after the coordinator's restart")
    ran = live_engine.wait_for(running_id)
    assert ran["state"] == "COMPLETED", ran
    assert [t["state"] for t in ran["execution"]] == ["FAILED", "COMPLETED"]
    assert ran["execution"][0]["error"] == "task lost: the coordinator restarted while the task was in flight"
    waited = live_engine.wait_for(queued_id, timeout=90)
    assert waited["state"] == "COMPLETED", waited
    assert [(t["state"], t.get("redelivered"), t.get("result")) for t in waited["execution"]] == [
        ("COMPLETED", None, "ran")
    ]


def _composite(live_engine: LiveEngine, job_id: str, name: str) -> dict[str, Any] | None:
    """The job's task `name`, or None while the job has not made it yet (just after the submit)."""
    job = live_engine.http.get(f"/jobs/{job_id}").json()
    return next((task for task in job["execution"] if task["name"] == name), None)


def test_a_killed_coordinator_keeps_the_counts_of_a_running_parallel_and_each(
    live_engine: LiveEngine, docker_client: Any
) -> None:
    # Each composite stops with children counted home and one gated child running; the each (concurrency 1)
    # still has children waiting (CREATED) for the restarted coordinator to release one by one.
    quick = {"image": TEST_IMAGE, "run": "true"}
    parallel = [{"name": "a", **quick}, {"name": "b", **quick}, {"name": "gated", "image": TEST_IMAGE, "run": GATED}]
    item = {"name": "item {{ item.index }}", "image": TEST_IMAGE}
    item["run"] = f'if [ "{{{{ item.index }}}}" = "1" ]; then {GATED}; fi'
    each = {"list": "{{ sequence(0, 4) }}", "concurrency": 1, "task": item}
    fan_id = live_engine.submit_json({"name": "fan out", "tasks": [{"name": "p", "parallel": {"tasks": parallel}}]})[
        "id"
    ]
    each_id = live_engine.submit_json({"name": "one by one", "tasks": [{"name": "e", "each": each}]})["id"]

    def counted(job_id: str, name: str, kind: str, count: int) -> bool:
        parent = _composite(live_engine, job_id, name)
        if parent is None or parent["state"] != "RUNNING" or parent.get(kind, {}).get("completions") != count:
            return False
        shown = live_engine.http.get(f"/tasks/{parent['id']}").json()  # GET /tasks/{id} shows it the same
        return shown[kind]["completions"] == count and len(running_containers(docker_client, job_id)) == 1

    poll_until(lambda: counted(fan_id, "p", "parallel", 2), 60, "the parallel at 2 of 3 with its gated child")
    poll_until(lambda: counted(each_id, "e", "each", 1), 60, "the each at 1 of 4 with its gated item running")

    ray.kill(live_engine.coordinator, no_restart=False)  # Ray restarts it with its memory gone

    def finished(job_id: str) -> bool:
        open_gates(docker_client, job_id)  # the redelivered gated child may finish
        return live_engine.http.get(f"/jobs/{job_id}").json()["state"] in ("COMPLETED", "FAILED")

    poll_until(lambda: finished(fan_id) and finished(each_id), 120, "both jobs to finish after the restart")
    fan, one_by_one = live_engine.wait_for(fan_id), live_engine.wait_for(each_id)
    failed = [(t["name"], t["state"], t.get("error")) for job in (fan, one_by_one) for t in job["execution"]]
    assert fan["state"] == one_by_one["state"] == "COMPLETED", [task for task in failed if task[1] != "COMPLETED"]
    fan_parent, each_parent = _composite(live_engine, fan_id, "p"), _composite(live_engine, each_id, "e")
    assert fan_parent is not None and fan_parent["parallel"]["completions"] == 3
    assert each_parent is not None and each_parent["each"]["completions"] == 4
    items = [t for t in one_by_one["execution"] if t["name"].startswith("item ")]
    assert sorted(t["name"] for t in items) == [f"item {i}" for i in range(4)]
    assert {t["state"] for t in items} == {"COMPLETED"}
