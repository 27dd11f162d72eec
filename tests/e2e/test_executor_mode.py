"""`worker.executor = "node"` (worker/executor.py, coordinator/executors.py): the engine as `make run` starts
it, with one executor actor per node and queue instead of a Ray task per Tork task. The guarantees of the
default path hold: results and logs, the queue's slots, cancel, timeouts, and a dead executor's task run again
by its redelivery rules."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE
from tests.e2e.conftest import EngineProcess, wait_for_job
from tests.polling import poll_until

SLOTS = 2
LINGER_SECONDS = 3


@pytest.fixture(scope="module")
def engine_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = EngineProcess(
        tmp_path_factory.mktemp("executor_engine"),
        f"tork_exec_{uuid.uuid4().hex[:8]}",
        env={
            "TORK_WORKER_EXECUTOR": "node",
            "TORK_RUNTIME_TYPE": "shell",
            "TORK_WORKER_QUEUES_DEFAULT": str(SLOTS),
            "TORK_WORKER_LINGER": f"{LINGER_SECONDS}s",
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def engine(engine_process: EngineProcess) -> Iterator[httpx.Client]:
    with engine_process.http() as http:
        yield http


def submit(http: httpx.Client, job: dict[str, Any]) -> str:
    response = http.post("/jobs", json=job)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def task_log(http: httpx.Client, task_id: str) -> str:
    parts = http.get(f"/tasks/{task_id}/log", params={"size": 100}).json()["items"]
    return "".join(part["contents"] for part in sorted(parts, key=lambda part: part["number"]))


def ray_processes(root: int, name: str) -> list[int]:
    """Pids of the processes below `root` (an engine) that Ray named `ray::<name>` (an actor's class)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            stack.append(child)
            try:
                if (Path("/proc") / str(child) / "cmdline").read_bytes().startswith(f"ray::{name}".encode()):
                    found.append(child)
            except OSError:
                continue
    return found


def test_sequential_parallel_and_each_tasks_complete_with_results_and_logs(engine: httpx.Client) -> None:
    job_id = submit(
        engine,
        {
            "name": "executor",
            "tasks": [
                {"name": "first", "var": "first", "run": "echo hello from the executor; echo -n one > $TORK_OUTPUT"},
                {"name": "fan", "parallel": {"tasks": [{"name": f"p{i}", "run": f"echo p{i}"} for i in range(6)]}},
                {"name": "each", "each": {"list": "{{ sequence(1, 4) }}", "task": {"name": "e", "run": "true"}}},
                {"name": "last", "env": {"FIRST": "{{ tasks.first }}"}, "run": 'echo -n "$FIRST done" > $TORK_OUTPUT'},
            ],
        },
    )
    job = wait_for_job(engine, job_id, timeout=120)
    assert job["state"] == "COMPLETED", job
    by_name = {task["name"]: task for task in job["execution"]}
    assert by_name["last"]["result"] == "one done"
    first = by_name["first"]
    assert first["nodeId"] and first["startedAt"]
    assert "hello from the executor" in task_log(engine, first["id"])


def executor_reports(http: httpx.Client) -> dict[str, int]:
    text = http.get("/metrics/prometheus").text
    return {
        via: int(line.rsplit(" ", 1)[1])
        for via in ("channel", "ray")
        for line in text.splitlines()
        if line.startswith(f'tork_executor_reports_total{{via="{via}"}}')
    }


def test_an_executor_on_the_coordinators_node_reports_on_its_direct_channel(engine: httpx.Client) -> None:
    """Once the executor is up, every outcome comes on its channel (coordinator/channels.py), none by a Ray
    call: a sequential job reports each task alone, so its five tasks are five reports on the channel."""
    tasks = [{"name": f"t{i}", "run": f"echo -n {i} > $TORK_OUTPUT"} for i in range(5)]
    warm = submit(engine, {"name": "warm", "tasks": tasks[:1]})  # the executor made, its channel opened
    assert wait_for_job(engine, warm, timeout=120)["state"] == "COMPLETED"
    before = executor_reports(engine)
    job = wait_for_job(engine, submit(engine, {"name": "channel", "tasks": tasks}), timeout=120)
    assert job["state"] == "COMPLETED", job
    assert [task["result"] for task in job["execution"]] == ["0", "1", "2", "3", "4"]
    after = executor_reports(engine)
    assert after["channel"] - before["channel"] >= 5, (before, after)
    assert after["ray"] == before["ray"], (before, after)


def test_a_queue_runs_no_more_tasks_at_once_than_its_slots(engine: httpx.Client, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    # Each task notes its start and end (ns clock) in a file of its own; their overlap is counted afterwards.
    run = f"date +%s%N > {marks}/$$.start; sleep 0.3; date +%s%N > {marks}/$$.end"
    job_id = submit(engine, {"name": "slots", "tasks": [{"name": "fan", "parallel": {
        "tasks": [{"name": f"t{i}", "run": run} for i in range(8)]}}]})  # fmt: skip
    assert wait_for_job(engine, job_id, timeout=120)["state"] == "COMPLETED"
    spans = [(int(start.read_text()), int(start.with_suffix(".end").read_text())) for start in marks.glob("*.start")]
    assert len(spans) == 8
    most = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert most <= SLOTS, spans


def test_a_cancelled_task_stops_and_its_process_is_gone(engine: httpx.Client, tmp_path: Path) -> None:
    marker = f"sleep 300 # {uuid.uuid4().hex}"
    started = tmp_path / "started"
    job_id = submit(engine, {"name": "cancel", "tasks": [{"name": "long", "run": f"touch {started}; {marker}"}]})
    poll_until(started.exists, 60, "the long task running")
    assert engine.put(f"/jobs/{job_id}/cancel").status_code == 200
    assert wait_for_job(engine, job_id, "CANCELLED")["state"] == "CANCELLED"

    def gone() -> bool:
        return not subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout

    poll_until(gone, 30, "the cancelled task's process gone")


def test_a_task_past_its_timeout_fails(engine: httpx.Client) -> None:
    job_id = submit(engine, {"name": "timeout", "tasks": [{"name": "slow", "timeout": "1s", "run": "sleep 60"}]})
    job = wait_for_job(engine, job_id, timeout=60)
    assert job["state"] == "FAILED"
    assert "timed out" in job["execution"][0]["error"], job


def test_a_killed_executors_task_fails_clearly_its_retry_runs_and_the_queue_carries_on(
    engine: httpx.Client, engine_process: EngineProcess, tmp_path: Path
) -> None:
    attempts, gate = tmp_path / "attempts", tmp_path / "gate"
    attempts.mkdir()
    # Each attempt leaves a file named by its shell's pid; the first waits at the gate while the test kills the
    # executor; as with a killed Ray worker (tests/integration/test_worker_death.py), the retry rules decide.
    run = f"touch {attempts}/$$; while [ ! -e {gate} ]; do sleep 0.1; done; echo -n ran > $TORK_OUTPUT"
    job_id = submit(engine, {"name": "killed", "tasks": [{"name": "held", "retry": {"limit": 1}, "run": run}]})
    # RUNNING stored: the coordinator has heard of its start (a task it had not would be sent again, below).
    poll_until(lambda: states(engine, job_id) == ["RUNNING"], 60, "the held task running")
    kill_executors(engine_process)
    poll_until(lambda: len(list(attempts.iterdir())) >= 2, 120, "the retry running")
    gate.touch()
    job = wait_for_job(engine, job_id, timeout=120)
    assert job["state"] == "COMPLETED", job
    tries = [(task["state"], task.get("result")) for task in job["execution"]]
    assert tries == [("FAILED", None), ("COMPLETED", "ran")], job["execution"]
    assert job["execution"][0]["error"].startswith("task lost: the executor process running the task died")
    # The dead executor's watchdog ended the first attempt's processes.
    first = min(attempts.iterdir(), key=lambda path: path.stat().st_mtime_ns)
    poll_until(lambda: not Path(f"/proc/{first.name}").exists(), 30, "the first attempt's shell gone")
    # And the queue still runs tasks, on the executor made in the dead one's place.
    again = submit(engine, {"name": "after", "tasks": [{"name": "t", "run": "true"}]})
    assert wait_for_job(engine, again, timeout=120)["state"] == "COMPLETED"


def test_a_killed_executors_queued_tasks_run_again_without_spending_a_retry(
    engine: httpx.Client, engine_process: EngineProcess, tmp_path: Path
) -> None:
    """An executor takes more tasks than its slots while the queue's tasks are short (coordinator/executors.py
    QUEUE_SECONDS), queued in it: those had not started when it died, so they are sent again rather than lost;
    the running ones are lost and retried."""
    # Short tasks first: the queue's mean run time, from the tests before, falls well under QUEUE_SECONDS.
    short = [{"name": f"s{i}", "run": "true"} for i in range(40)]
    warm_up = submit(engine, {"name": "short", "tasks": [{"name": "fan", "parallel": {"tasks": short}}]})
    assert wait_for_job(engine, warm_up, timeout=120)["state"] == "COMPLETED"
    attempts, gate = tmp_path / "attempts", tmp_path / "gate"
    attempts.mkdir()
    run = f"touch {attempts}/$$; while [ ! -e {gate} ]; do sleep 0.1; done"
    held = [{"name": f"t{i}", "retry": {"limit": 1}, "run": run} for i in range(2 * SLOTS)]
    job_id = submit(engine, {"name": "queued", "tasks": [{"name": "fan", "parallel": {"tasks": held}}]})

    def slots_running_and_the_rest_in_the_executor() -> bool:
        unacked = engine.get("/queues/default").json()["unacked"]
        return states(engine, job_id).count("RUNNING") == SLOTS and unacked == 2 * SLOTS

    poll_until(slots_running_and_the_rest_in_the_executor, 60, "two tasks running and two queued in the executor")
    kill_executors(engine_process)
    poll_until(lambda: len(list(attempts.iterdir())) >= 2 * SLOTS, 120, "the next tasks running")
    gate.touch()
    job = wait_for_job(engine, job_id, timeout=120)
    assert job["state"] == "COMPLETED", job
    children = [task for task in job["execution"] if task["name"].startswith("t")]
    lost = [task for task in children if task["state"] == "FAILED"]
    assert len(lost) == SLOTS, children  # only the ones that were running
    assert all(task["error"].startswith("task lost: the executor process running") for task in lost), lost
    assert sorted(task["name"] for task in children if task["state"] == "COMPLETED") == [t["name"] for t in held]
    assert len(list(attempts.iterdir())) == 3 * SLOTS  # the lost ones twice, the queued ones once


def states(engine: httpx.Client, job_id: str) -> list[str]:
    """The states of the job's tasks that run (not a parallel's parent)."""
    execution = engine.get(f"/jobs/{job_id}").json()["execution"]
    return [task["state"] for task in execution if "parallel" not in task]


def kill_executors(engine_process: EngineProcess) -> None:
    assert engine_process.process is not None
    victims = ray_processes(engine_process.process.pid, "QueueExecutor")
    assert victims, "no executor process found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)


def test_a_coordinator_restart_runs_the_executors_tasks_again(
    engine: httpx.Client, engine_process: EngineProcess, tmp_path: Path
) -> None:
    """The executors end with the coordinator that made them; the restarted coordinator makes its own, and its
    recovery redelivers what ran on the old ones (the same task, once more)."""
    attempts, gate = tmp_path / "attempts", tmp_path / "gate"
    attempts.mkdir()
    run = f"touch {attempts}/$$; while [ ! -e {gate} ]; do sleep 0.1; done; echo -n ran > $TORK_OUTPUT"
    job_id = submit(engine, {"name": "restart", "tasks": [{"name": "held", "run": run}]})
    poll_until(lambda: any(attempts.iterdir()), 60, "the held task running")
    assert engine_process.process is not None
    coordinators = ray_processes(engine_process.process.pid, "Coordinator")
    assert len(coordinators) == 1, coordinators
    os.kill(coordinators[0], signal.SIGKILL)
    poll_until(lambda: len(list(attempts.iterdir())) >= 2, 180, "the task redelivered")
    gate.touch()
    job = wait_for_job(engine, job_id, timeout=120)
    assert job["state"] == "COMPLETED", job
    assert [(task["state"], task.get("result")) for task in job["execution"]] == [("COMPLETED", "ran")]
    first = min(attempts.iterdir(), key=lambda path: path.stat().st_mtime_ns)
    poll_until(lambda: not Path(f"/proc/{first.name}").exists(), 30, "the first attempt's shell gone")


@pytest.fixture(scope="module")
def docker_engine(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[httpx.Client]:
    process = EngineProcess(
        tmp_path_factory.mktemp("executor_docker"),
        f"tork_execd_{uuid.uuid4().hex[:8]}",
        env={"TORK_WORKER_EXECUTOR": "node", "TORK_WORKER_QUEUES_DEFAULT": str(SLOTS)},
    )
    process.start()
    try:
        with process.http() as http:
            yield http
    finally:
        process.stop()


def test_container_tasks_share_the_executor_and_a_cancelled_ones_container_is_removed(
    docker_engine: httpx.Client, docker_client: Any
) -> None:
    # Containers on the executor's threads at once, each with its own log and result.
    run = "echo box {i}; echo -n r{i} > $TORK_OUTPUT"
    fan = [{"name": f"c{i}", "image": TEST_IMAGE, "run": run.format(i=i)} for i in range(4)]
    job_id = submit(docker_engine, {"name": "containers", "tasks": [{"name": "fan", "parallel": {"tasks": fan}}]})
    job = wait_for_job(docker_engine, job_id, timeout=180)
    assert job["state"] == "COMPLETED", job
    children = [task for task in job["execution"] if task["name"].startswith("c")]
    assert sorted(task["result"] for task in children) == ["r0", "r1", "r2", "r3"]
    for task in children:
        assert f"box {task['name'][1:]}" in task_log(docker_engine, task["id"])

    held = submit(docker_engine, {"name": "held", "tasks": [{"name": "h", "image": TEST_IMAGE, "run": "sleep 300"}]})
    labelled = {"label": f"tork_ray.job-id={held}"}
    poll_until(lambda: docker_client.containers.list(filters=labelled), 120, "the held container running")
    assert docker_engine.put(f"/jobs/{held}/cancel").status_code == 200
    assert wait_for_job(docker_engine, held, "CANCELLED")["state"] == "CANCELLED"
    poll_until(
        lambda: not docker_client.containers.list(all=True, filters=labelled, ignore_removed=True),
        60,
        "the cancelled task's container removed",
    )


def test_an_idle_executor_gives_its_slots_back_and_the_next_task_makes_another(
    engine_process: EngineProcess, engine: httpx.Client
) -> None:
    """worker.linger: an executor with no task for that long stops, so that its queue's slots are the node's
    again (another engine's, an autoscaler's); the next task makes a new one."""
    assert engine_process.process is not None
    root = engine_process.process.pid
    job = {"name": "linger", "tasks": [{"name": "one", "run": "echo -n $PPID > $TORK_OUTPUT"}]}
    first = wait_for_job(engine, submit(engine, job), timeout=120)
    assert first["state"] == "COMPLETED", first
    executor_pid = int(first["execution"][0]["result"])  # the shell's parent: the executor's process
    assert executor_pid in ray_processes(root, "QueueExecutor")
    poll_until(lambda: executor_pid not in ray_processes(root, "QueueExecutor"), 60, "the idle executor stopped")
    second = wait_for_job(engine, submit(engine, job), timeout=120)
    assert second["state"] == "COMPLETED", second
    assert int(second["execution"][0]["result"]) != executor_pid
