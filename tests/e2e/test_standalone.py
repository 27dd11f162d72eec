"""`make run`'s engine, end to end: the seed example as written, Ctrl-C, and a restart on the same data."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.profile_tasks import descendants
from tests.e2e.conftest import EngineProcess, wait_for_job
from tests.integration.gates import GATED, open_gates, running_containers
from tests.polling import poll_until

ROOT = Path(__file__).resolve().parents[2]


def containers_of(docker_client: Any, engine: EngineProcess) -> list[Any]:
    label = f"tork_ray.scope={engine.namespace}"
    return docker_client.containers.list(all=True, filters={"label": label}, ignore_removed=True)  # type: ignore[no-any-return]


def test_seed_example_as_written_then_a_restart_where_running_jobs_resume(
    engine_process: EngineProcess, docker_client: Any
) -> None:
    # One engine for both halves (was two tests, each starting and stopping its own engine): a cold start is
    # the slowest step of the e2e tests, and the seed example's checks are the first half of the restart's.
    seconds = engine_process.start()
    print(f"cold start to a healthy API: {seconds:.1f}s")
    assert engine_process.process is not None
    tree = _ray_processes(engine_process.process.pid)
    with engine_process.http() as http:
        summary = http.post(
            "/jobs", content=(ROOT / "examples" / "hello.yaml").read_bytes(), headers={"Content-type": "text/yaml"}
        ).json()
        assert summary["state"] == "PENDING"
        done = summary["id"]
        job = wait_for_job(http, done)
        assert job["state"] == "COMPLETED", job
        assert [task["state"] for task in job["execution"]] == ["COMPLETED", "COMPLETED"]
        assert job["context"]["tasks"]["task1"] == "hello world"
        retried = http.post("/jobs", json=_sleeper("survivor", retry=1), headers={}).json()["id"]
        lost = http.post("/jobs", json=_sleeper("casualty", retry=0, redeliveries=0)).json()["id"]
        for job_id in (retried, lost):  # gated: both surely still run when the engine stops
            poll_until(partial(running_containers, docker_client, job_id), 90, f"{job_id}'s container running")
    # Ctrl-C while both run: a clean exit, and their containers go with the engine, and its Ray with it.
    assert engine_process.stop() == 0
    assert containers_of(docker_client, engine_process) == []
    poll_until(lambda: not _alive(tree), 30, f"the engine's Ray processes to exit: {tree}")

    engine_process.start()
    with engine_process.http() as http:
        assert http.get(f"/jobs/{done}").json()["state"] == "COMPLETED"
        resumed = poll_until(lambda: _let_finish(http, docker_client, retried), 90, "the retried job to finish")
        failed = poll_until(lambda: _let_finish(http, docker_client, lost), 90, "the lost job to finish")
    # The interrupted task is redelivered: the same record runs again, no retry spent.
    assert resumed["state"] == "COMPLETED", resumed
    assert [(t["state"], t.get("redelivered")) for t in resumed["execution"]] == [("COMPLETED", 1)]
    # A task that asked not to be redelivered fails as lost, and its retry rules (none) decide.
    assert failed["state"] == "FAILED"
    assert "coordinator restarted" in failed["error"]
    assert engine_process.stop() == 0
    assert containers_of(docker_client, engine_process) == []


def _ray_processes(engine_pid: int) -> dict[int, str]:
    """The engine's process tree, checked to be Ray's head node minus the two processes a lone engine has no
    use for (tork_ray/local_ray.py): the autoscaler's monitor and the log monitor."""
    tree = descendants(engine_pid)
    commands = " ".join(tree.values())
    assert "gcs_server" in commands and "/raylet" in commands, tree
    assert "monitor.py" not in commands, tree  # autoscaler/_private/monitor.py and _private/log_monitor.py
    return tree


def _alive(pids: dict[int, str]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _let_finish(http: Any, docker_client: Any, job_id: str) -> dict[str, Any] | None:
    """Opens the gates of the job's running containers; the job once it is finished."""
    open_gates(docker_client, job_id)
    job: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
    return job if job["state"] in ("COMPLETED", "FAILED", "CANCELLED") else None


def _sleeper(name: str, retry: int, redeliveries: int | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {"name": "nap", "image": "ubuntu:mantic", "run": GATED}
    if retry:
        task["retry"] = {"limit": retry}
    if redeliveries is not None:
        task["redeliveries"] = redeliveries
    return {"name": name, "tasks": [task]}
