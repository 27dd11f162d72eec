"""Group commits (coordinator/grouping.py) keep the house rules: nothing is acknowledged, and nothing leaves the
coordinator, before the change that explains it is stored; a group is stored whole; a failing event of a group
fails only its own job. The process is killed (SIGKILL) right at the acknowledgement, then the store is read."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.acked import GROUP, engine
from tests.unit.test_writer import refuse_tasks_named
from tork_ray.domain.states import JobState, TaskState
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store

ROOT = Path(__file__).resolve().parents[2]


def killed_at_acknowledgement(db: Path, mode: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tests.integration.acked", str(db), mode], env=env, timeout=120)
    assert done.returncode == -9, f"the engine was to kill itself at the acknowledgement, exit {done.returncode}"
    return Path(f"{db}.acked").read_text()


def test_an_acknowledged_start_survives_a_kill_and_its_group_is_stored_whole(tmp_path: Path) -> None:
    acked = killed_at_acknowledgement(tmp_path / "tork.db", "started")
    store = Store(f"sqlite:///{tmp_path / 'tork.db'}")
    task = store.get_task(acked)
    assert task is not None and task.state is TaskState.RUNNING and task.node_id == "node-1"
    # Every start of the loop turn was one transaction: all of them are there, not only the one acknowledged.
    assert store.state_counts()["tasks"] == {"RUNNING": GROUP + 1}  # the parallel itself, and its children


def test_a_task_leaves_the_coordinator_only_once_the_result_before_it_is_stored(tmp_path: Path) -> None:
    launched = killed_at_acknowledgement(tmp_path / "tork.db", "result")
    store = Store(f"sqlite:///{tmp_path / 'tork.db'}")
    second = store.get_task(launched)
    assert second is not None and second.name == "second" and second.state is TaskState.SCHEDULED
    firsts = [t for t in store.job_tasks(second.job_id) if t.name == "first"]
    assert [(t.state, t.result) for t in firsts] == [(TaskState.COMPLETED, "done")]
    # The results of the turn were one group: every first task is stored COMPLETED, every second SCHEDULED.
    assert store.state_counts()["tasks"] == {"COMPLETED": GROUP, "SCHEDULED": GROUP}


def test_a_failing_event_in_a_group_fails_only_its_own_job(tmp_path: Path) -> None:
    store_path = tmp_path / "tork.db"
    refused = "refused"

    async def scenario() -> tuple[str, str]:
        runs: dict[str, asyncio.Future[dict[str, str]]] = {}

        def launch(request: RunRequest, resource: str) -> asyncio.Future[dict[str, str]]:
            runs[request.task_id] = asyncio.get_running_loop().create_future()
            return runs[request.task_id]

        coordinator = engine(str(store_path), launch, 10)
        refuse_tasks_named(coordinator.writer.store, refused)
        jobs = [
            coordinator.submit(parse_job(json.dumps(body).encode(), "application/json"))
            for body in (
                {"name": "fine", "tasks": [{"name": "first", "run": "true"}, {"name": "second", "run": "true"}]},
                {"name": "bad", "tasks": [{"name": "first", "run": "true"}, {"name": refused, "run": "true"}]},
            )
        ]
        while len(runs) < 2:
            await asyncio.sleep(0)
        for task_id in list(runs):
            await coordinator.report_started(task_id, "node-1")
        for future in list(runs.values()):  # both results in one loop turn: one group, which fails
            future.set_result({"result": "done"})
        await coordinator.wait_job(jobs[1].id, 30)
        # The fine job's second task, launched once its event was stored on its own (a deadline: if it never
        # is, the asserts below say what was stored instead).
        for _ in range(3000):
            if len(runs) >= 3:
                break
            await asyncio.sleep(0.01)
        return jobs[0].id, jobs[1].id

    fine_id, bad_id = asyncio.run(scenario())
    store = Store(f"sqlite:///{store_path}")
    fine, bad = store.get_job(fine_id), store.get_job(bad_id)
    assert fine is not None and fine.state is JobState.RUNNING and fine.position == 2
    assert [t.state for t in store.job_tasks(fine_id)] == [TaskState.COMPLETED, TaskState.SCHEDULED]
    assert bad is not None and bad.state is JobState.FAILED
    assert bad.error is not None and "refused by a test trigger" in bad.error
