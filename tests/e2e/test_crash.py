"""A crash of the whole engine (SIGKILL) in the middle of a burst of jobs, and a start on the same data: every job
ends, none stays RUNNING, none fails because of the crash unless a task of it was running and its redelivery and
retry rules were spent, and no task whose completion was stored runs again. On both stores: SQLite (the burst of
40 jobs) and PostgreSQL (a fresh database of its own on the test server; a burst of 16, the same cut: some done,
one running, the rest waiting)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import EngineProcess
from tests.polling import poll_until
from tork_ray.coordinator.recovery import LOST_TASK_ERROR
from tork_ray.settings import DatastoreSettings, Settings
from tork_ray.store.store import open_store

QUEUED_JOBS = {"sqlite": 40, "postgres": 16}
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
GATED_SHORT = 3
# Three holders take three of the default queue's four slots until the test releases them (a file, not a
# timer), so they surely run when the engine dies; the short jobs go through the fourth slot one task at a time,
# the first GATED_SHORT of them are done before the next one, gated too, takes it; so the crash surely lands in
# the middle of their burst: some done, one running, the rest waiting (a timer lost that race on a fast store:
# all 16 were done when the engine was killed).
HOLDERS: dict[str, dict[str, Any]] = {
    "redelivered": {},  # by default run again after a restart: the same task record, once
    "retried": {"redeliveries": 0, "retry": {"limit": 1}},  # refuses a rerun: lost, its retry runs
    "spent": {"redeliveries": 0},  # neither: the one job the crash may fail, and only so
}


@contextmanager
def _store_of(kind: str, data: Path) -> Iterator[Settings]:
    """The settings (as the engine reads them from TORK_* variables) of a store of `kind` for one run."""
    if kind == "sqlite":
        yield Settings(data_dir=data)
        return
    from tests.postgres import fresh_database

    with fresh_database("crash") as url:
        yield Settings(data_dir=data, datastore=DatastoreSettings(type="postgres", postgres_dsn=url))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_crash_mid_burst_loses_no_job_and_reruns_no_completed_task(tmp_path: Path, kind: str) -> None:
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    runs.mkdir()
    with _store_of(kind, data) as settings:
        _crash_mid_burst(settings, tmp_path, QUEUED_JOBS[kind])


def _crash_mid_burst(settings: Settings, tmp_path: Path, queued: int) -> None:
    data, runs, release = settings.data_dir, tmp_path / "runs", tmp_path / "release"
    env = {"TORK_RUNTIME_TYPE": "shell", "TORK_WORKER_QUEUES_DEFAULT": "4"}
    if settings.datastore.type == "postgres":
        env |= {"TORK_DATASTORE_TYPE": "postgres", "TORK_DATASTORE_POSTGRES_DSN": settings.datastore.postgres_dsn}
    engine = EngineProcess(data, f"tork_crash_{uuid.uuid4().hex[:8]}", env=env)
    # Every run of a task appends a line to its own file: how often each task really started.
    wait = f"while [ ! -e {release} ]; do sleep 0.05; done"
    hold = f"{wait}; echo -n held > $TORK_OUTPUT"
    engine.start()
    try:
        with engine.http() as http:
            ids = {name: _submit(http, _holder(name, spec, runs, hold)) for name, spec in HOLDERS.items()}
            poll_until(lambda: all(_states(http, ids[n]) == ["RUNNING"] for n in HOLDERS), 60, "the holders running")
            done = {f"short {i}": _submit(http, _short(i, runs, wait)) for i in range(GATED_SHORT)}
            poll_until(lambda: _completed(http, done) == GATED_SHORT, 60, "the first short jobs done")
            # The gated one first: it takes the fourth slot, and every job after it waits in the queue.
            ids |= done | {f"short {i}": _submit(http, _short(i, runs, wait)) for i in range(GATED_SHORT, queued)}
            poll_until(lambda: _states(http, ids[f"short {GATED_SHORT}"]) == ["RUNNING"], 60, "the gated short job")
        engine.kill()
        at_crash = _stored_tasks(settings, ids)
        began = time.monotonic()
        print(f"engine started again in {engine.start():.1f}s")
        release.touch()
        with engine.http() as http:
            poll_until(lambda: _completed(http, ids, TERMINAL) == len(ids), 180, "every job to finish")
            jobs = {name: http.get(f"/jobs/{job_id}").json() for name, job_id in ids.items()}
        print(f"{len(jobs)} jobs finished {time.monotonic() - began:.1f}s after the restart began")
    finally:
        release.touch()
        if engine.process is not None and engine.process.poll() is None:
            engine.stop()
    started = Counter(path.name for path in runs.iterdir() for _line in path.read_text().splitlines())
    crash_states = Counter(state for tasks in at_crash.values() for _i, _n, state in tasks)
    print(f"task states at the crash: {dict(crash_states)}")
    problems = [p for name, job in jobs.items() for p in _problems(name, job, at_crash[name], started)]
    assert not problems, "\n".join(problems)
    # The burst was cut in the middle: done, running and waiting short tasks all met the crash.
    assert crash_states["COMPLETED"] >= 3 and crash_states["SCHEDULED"] + crash_states["PENDING"] >= 1, crash_states

    # Running when the engine died, each by its own rules (held by the test: surely RUNNING then).
    assert _attempts(jobs["redelivered"]) == [("COMPLETED", 1, "held", None)]
    assert _attempts(jobs["retried"]) == [("FAILED", 0, None, LOST_TASK_ERROR), ("COMPLETED", 0, "held", None)]
    assert _attempts(jobs["spent"]) == [("FAILED", 0, None, LOST_TASK_ERROR)]
    assert (jobs["spent"]["state"], jobs["spent"]["error"]) == ("FAILED", LOST_TASK_ERROR)
    assert [started[f"{n}.hold"] for n in HOLDERS] == [2, 2, 1]


def _problems(name: str, job: dict[str, Any], at_crash: list[tuple[str, str, str]], started: Counter[str]) -> list[str]:
    """What is wrong with one finished job, given its tasks' stored states when the engine died."""
    problems = []
    tasks = job["execution"]
    if job["state"] != "COMPLETED":
        was_running = any(state == "RUNNING" for _id, _name, state in at_crash)
        if not (name == "spent" and was_running and job.get("error") == LOST_TASK_ERROR):
            problems.append(f"{name}: {job['state']} ({job.get('error')}); tasks at the crash: {at_crash}")
    final = {task["id"]: task for task in tasks}
    for task_id, task_name, state in at_crash:
        if state != "COMPLETED":
            continue
        # Its completion was stored: the same record stays COMPLETED, and the task never started again.
        if final.get(task_id, {}).get("state") != "COMPLETED" or started[f"{name}.{task_name}"] != 1:
            problems.append(
                f"{name}: task {task_name} COMPLETED at the crash, then {final.get(task_id)}, "
                f"started {started[f'{name}.{task_name}']} times"
            )
    for task_name, count in Counter(t["name"] for t in tasks if t["state"] == "COMPLETED").items():
        if count != 1:
            problems.append(f"{name}: task {task_name} COMPLETED {count} times")
    return problems


def _holder(name: str, spec: dict[str, Any], runs: Path, hold: str) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": "hold", "run": f"echo >> {runs}/{name}.hold; {hold}", **spec}]}


def _short(i: int, runs: Path, wait: str) -> dict[str, Any]:
    gate = {"one": f"{wait}; "} if i == GATED_SHORT else {}
    tasks = [
        {"name": task, "run": f"echo >> '{runs}/short {i}.{task}'; {gate.get(task, '')}echo -n {task} > $TORK_OUTPUT"}
        for task in ("one", "two")
    ]
    return {"name": f"short {i}", "tasks": tasks}


def _stored_tasks(settings: Settings, ids: dict[str, str]) -> dict[str, list[tuple[str, str, str]]]:
    """Each job's tasks as the dead engine left them in the store: (id, name, state)."""
    store = open_store(settings)
    try:
        return {name: [(t.id, t.name, str(t.state)) for t in store.job_tasks(job_id)] for name, job_id in ids.items()}
    finally:
        store.close()


def _attempts(job: dict[str, Any]) -> list[tuple[str, int, str | None, str | None]]:
    return [(t["state"], t.get("redelivered", 0), t.get("result"), t.get("error")) for t in job["execution"]]


def _submit(http: Any, document: dict[str, Any]) -> str:
    response = http.post("/jobs", json=document)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _states(http: Any, job_id: str) -> list[str]:
    return [task["state"] for task in http.get(f"/jobs/{job_id}").json()["execution"]]


def _completed(http: Any, ids: dict[str, str], states: tuple[str, ...] = ("COMPLETED",)) -> int:
    return sum(http.get(f"/jobs/{job_id}").json()["state"] in states for job_id in ids.values())
