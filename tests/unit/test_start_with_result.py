"""The coordinator's side of a start reported with the result: RUNNING then the outcome in one transaction, the
worker's start time, watchers (webhooks) seeing RUNNING, and what a restart does with a task that started
without saying so yet. Over a real SQLite store; `launch` stands in for Ray (each run a future we resolve)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ray.exceptions import WorkerCrashedError

from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.recovery import resume_jobs
from tork_ray.coordinator.starts import worker_time
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.runtime.base import RunRequest
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store

DELAY = 0.05
T = TypeVar("T")


class Runs:
    """What the engine handed to 'Ray': each run's request and the future that is its result."""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []
        self.results: dict[str, asyncio.Future[dict[str, str]]] = {}

    def launch(self, request: RunRequest, resource: str) -> asyncio.Future[dict[str, str]]:
        self.requests.append(request)
        self.results[request.task_id] = asyncio.get_running_loop().create_future()
        return self.results[request.task_id]


class Watcher:
    """A ChangeWatcher, as the webhook outbox is one: every task change as the writer makes it."""

    def __init__(self) -> None:
        self.tasks: list[tuple[TaskState | None, TaskState, str | None]] = []
        self.jobs: list[tuple[JobState | None, JobState]] = []

    def job_changed(self, job: Job, old: JobState | None, changes: dict[str, Any]) -> None:
        if old is not job.state:
            self.jobs.append((old, job.state))

    def task_changed(self, task: Task, old: TaskState | None, changes: dict[str, Any]) -> None:
        if old is not task.state:
            self.tasks.append((old, task.state, task.node_id))


def make_engine(db: Path, runs: Runs, delay: float = DELAY, redeliveries: int = 1) -> Engine:
    """An engine on `db`, as a coordinator (re)started on that store would make it."""
    engine = Engine(
        StateWriter(Store(f"sqlite:///{db}")), runs.launch, "unit", redeliveries=redeliveries, start_report_delay=delay
    )
    engine.dispatcher._capacity = {"default": 10}  # no Ray to ask
    engine.dispatcher._capacity_read_at = float("inf")
    return engine


def job_of(*tasks: dict[str, Any], **fields: Any) -> Any:
    return parse_job(json.dumps({"name": "j", "tasks": list(tasks), **fields}).encode(), "application/json")


async def until(check: Callable[[], T | None], what: str) -> T:
    """poll_until for the loop the engine runs on: fails the test at its deadline."""
    for _ in range(2000):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def worker_clock(seconds_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def test_a_start_with_its_result_is_stored_running_then_completed_in_one_transaction(tmp_path: Path) -> None:
    runs, watcher = Runs(), Watcher()
    saves: list[list[tuple[str, TaskState]]] = []

    async def scenario() -> tuple[Engine, str, str]:
        engine = make_engine(tmp_path / "tork.db", runs)
        engine.writer.watch(watcher)
        save = engine.writer.store.save

        def counted(**kwargs: Any) -> None:
            saves.append([(task.id, task.state) for task in kwargs.get("tasks", [])])
            save(**kwargs)

        engine.writer.store.save = counted  # type: ignore[method-assign]
        job = engine.submit(job_of({"name": "t", "run": "true"}))
        task_id = (await until(lambda: runs.requests, "the launch"))[0].task_id
        started = worker_clock()
        saves.clear()
        runs.results[task_id].set_result({"result": "done", "nodeId": "node-1", "startedAt": started})
        await engine.wait_job(job.id, 30)
        return engine, task_id, started

    engine, task_id, started = run(scenario)
    assert runs.requests[0].start_report_delay == DELAY
    task = engine.writer.store.get_task(task_id)
    assert task is not None and task.state is TaskState.COMPLETED and task.node_id == "node-1"
    assert task.started_at == datetime.fromisoformat(started)  # the worker's clock, not the report's arrival
    assert saves == [[(task_id, TaskState.COMPLETED)]]  # one commit: the start and the result together
    # Watchers (the webhook outbox is one) see the task start, then end, and the job start running.
    assert watcher.tasks[-2:] == [
        (TaskState.SCHEDULED, TaskState.RUNNING, "node-1"),
        (TaskState.RUNNING, TaskState.COMPLETED, "node-1"),
    ]
    assert (JobState.SCHEDULED, JobState.RUNNING) in watcher.jobs
    assert watcher.jobs[-1] == (JobState.RUNNING, JobState.COMPLETED)


def test_a_failed_or_timed_out_run_within_the_delay_is_stored_running_then_failed(tmp_path: Path) -> None:
    runs, watcher = Runs(), Watcher()

    async def scenario() -> tuple[Engine, Job]:
        engine = make_engine(tmp_path / "tork.db", runs)
        engine.writer.watch(watcher)
        job = engine.submit(job_of({"name": "t", "run": "sleep 9", "timeout": "1s"}))
        task_id = (await until(lambda: runs.requests, "the launch"))[0].task_id
        error = {"error": "context deadline exceeded", "nodeId": "node-1", "startedAt": worker_clock()}
        runs.results[task_id].set_result(error)
        await engine.wait_job(job.id, 30)
        return engine, job

    engine, job = run(scenario)
    [task] = engine.writer.store.job_tasks(job.id)
    assert task.state is TaskState.FAILED and task.error == "context deadline exceeded"
    assert task.started_at is not None and task.node_id == "node-1"
    assert [(old, new) for old, new, _ in watcher.tasks[-2:]] == [
        (TaskState.SCHEDULED, TaskState.RUNNING),
        (TaskState.RUNNING, TaskState.FAILED),
    ]


@pytest.mark.parametrize(
    ("ended_ago", "expected"),
    [(0.0, "as sent"), (-3600.0, "now at most"), (30.0, "the start at least")],
    ids=["worker-clock", "clock-ahead", "clock-behind"],
)
def test_a_tasks_end_is_stamped_with_the_workers_clock_between_its_start_and_now(
    tmp_path: Path, ended_ago: float, expected: str
) -> None:
    """completedAt and failedAt are the worker's end of the run, not the moment its outcome arrived (an
    executor's report may hold outcomes back while other tasks run): a queue of one slot then never shows two
    tasks overlapping. A worker clock that is off is kept within [start, now] on the coordinator's clock."""
    runs = Runs()

    async def scenario() -> tuple[Engine, list[tuple[str, str, str]], datetime]:
        engine = make_engine(tmp_path / "tork.db", runs)
        job = engine.submit(job_of({"name": "ok", "run": "true"}, {"name": "bad", "run": "false"}))
        sent = []  # (task id, its start, its end), as the worker sent them
        for index, key in enumerate(("result", "error")):
            task_id = (await until(lambda at=index: runs.requests[at:], f"launch {index}"))[0].task_id
            started = worker_clock()
            ended = worker_clock(ended_ago)
            sent.append((task_id, started, ended))
            runs.results[task_id].set_result({key: "x", "nodeId": "n", "startedAt": started, "endedAt": ended})
        await engine.wait_job(job.id, 30)
        return engine, sent, datetime.now(UTC)

    engine, sent, after = run(scenario)
    for (task_id, started, ended), column in zip(sent, ("completed_at", "failed_at"), strict=True):
        task = engine.writer.store.get_task(task_id)
        assert task is not None
        stamp = getattr(task, column)
        if expected == "as sent":
            assert stamp == datetime.fromisoformat(ended)
        elif expected == "now at most":
            assert datetime.fromisoformat(started) <= stamp <= after
        else:
            assert stamp == datetime.fromisoformat(started)


def test_a_start_reported_before_the_result_is_kept_and_the_one_in_the_result_ignored(tmp_path: Path) -> None:
    runs = Runs()

    async def scenario() -> tuple[Engine, str, str]:
        engine = make_engine(tmp_path / "tork.db", runs)
        job = engine.submit(job_of({"name": "t", "run": "sleep 1"}))
        task_id = (await until(lambda: runs.requests, "the launch"))[0].task_id
        started = worker_clock()
        await engine.report_started(task_id, "node-1", started)  # the delay was up: reported on its own
        running = engine.writer.store.get_task(task_id)
        assert running is not None and running.state is TaskState.RUNNING
        runs.results[task_id].set_result({"result": "", "nodeId": "node-1", "startedAt": started})
        await engine.wait_job(job.id, 30)
        await engine.report_started(task_id, "node-1", started)  # a late repeat, after the end: ignored
        return engine, task_id, started

    engine, task_id, started = run(scenario)
    task = engine.writer.store.get_task(task_id)
    assert task is not None and task.state is TaskState.COMPLETED
    assert task.started_at == datetime.fromisoformat(started)


def test_progress_before_the_start_is_stored_on_the_scheduled_task(tmp_path: Path) -> None:
    runs = Runs()

    async def scenario() -> Engine:
        engine = make_engine(tmp_path / "tork.db", runs)
        job = engine.submit(job_of({"name": "t", "run": "true"}))
        task_id = (await until(lambda: runs.requests, "the launch"))[0].task_id
        engine.task_progress(task_id, 40)
        task = engine.writer.store.get_task(task_id)
        assert task is not None and task.state is TaskState.SCHEDULED and task.progress == 40.0
        runs.results[task_id].set_result({"result": "", "nodeId": "node-1", "startedAt": worker_clock()})
        await engine.wait_job(job.id, 30)
        done = engine.writer.store.get_job(job.id)
        assert done is not None and done.state is JobState.COMPLETED
        return engine

    run(scenario)


def test_a_worker_lost_within_the_delay_fails_its_task_never_running_and_retry_rules_decide(tmp_path: Path) -> None:
    runs = Runs()

    async def scenario() -> tuple[Engine, Job]:
        engine = make_engine(tmp_path / "tork.db", runs)
        job = engine.submit(job_of({"name": "t", "run": "true", "retry": {"limit": 1}}))
        first = (await until(lambda: runs.requests, "the launch"))[0].task_id
        runs.results[first].set_exception(WorkerCrashedError())  # no start, no result: the process died
        second = (await until(lambda: len(runs.requests) > 1 and runs.requests[1], "the retry's launch")).task_id
        runs.results[second].set_result({"result": "ok", "nodeId": "node-2", "startedAt": worker_clock()})
        await engine.wait_job(job.id, 30)
        return engine, job

    engine, job = run(scenario)
    lost, retried = engine.writer.store.job_tasks(job.id)
    assert lost.state is TaskState.FAILED and lost.started_at is None and lost.node_id is None
    assert lost.error is not None and lost.error.startswith("task lost: the worker process running the task died")
    assert retried.state is TaskState.COMPLETED and retried.node_id == "node-2"


@pytest.mark.parametrize(
    ("document", "engine_delay", "expected"),
    [
        ({"name": "j", "tasks": [{"name": "t", "run": "true"}]}, DELAY, DELAY),
        ({"name": "j", "tasks": [{"name": "t", "run": "true", "redeliveries": 0}]}, DELAY, 0.0),
        ({"name": "j", "defaults": {"redeliveries": 0}, "tasks": [{"name": "t", "run": "true"}]}, DELAY, 0.0),
        ({"name": "j", "tasks": [{"name": "t", "run": "true"}]}, 0.0, 0.0),
    ],
    ids=["default", "must-never-run-twice", "job-defaults", "setting-0"],
)
def test_which_tasks_report_their_start_at_once(
    tmp_path: Path, document: dict[str, Any], engine_delay: float, expected: float
) -> None:
    runs = Runs()

    async def scenario() -> None:
        engine = make_engine(tmp_path / "tork.db", runs, delay=engine_delay)
        engine.submit(parse_job(json.dumps(document).encode(), "application/json"))
        await until(lambda: runs.requests, "the launch")

    run(scenario)
    assert runs.requests[0].start_report_delay == expected


def test_a_task_started_but_not_reported_when_the_coordinator_died_runs_again_then_counts(tmp_path: Path) -> None:
    """The semantics after a restart: a task stored SCHEDULED may have started (its start was held back).
    It is queued again without spending a redelivery, but reports its start at once from then on: should the
    coordinator die again while it runs, the restart finds it RUNNING and counts a redelivery, so a task that
    keeps bringing the coordinator down runs at most redeliveries + 2 times. Its old runs cannot complete it (their
    results went to a dead coordinator; a late start of one only marks it RUNNING, as before); it COMPLETES
    once, with the result of the run the live coordinator launched."""
    db = tmp_path / "tork.db"

    async def restart(runs: Runs) -> tuple[Engine, RunRequest]:
        engine = make_engine(db, runs)
        resume_jobs(engine)
        return engine, (await until(lambda: runs.requests, "the task launched again"))[0]

    async def scenario() -> tuple[str, list[RunRequest], Engine]:
        first = make_engine(db, Runs())
        job = first.submit(job_of({"name": "t", "run": "true"}))
        launched: list[RunRequest] = []
        # 1st coordinator: launched with the delay, started, dies before the report or the result.
        second, request = await restart(Runs())
        launched.append(request)
        again = second.writer.store.get_task(request.task_id)
        assert again is not None and again.state is TaskState.SCHEDULED and again.redelivered == 0
        # 2nd: the requeued run reports its start at once, and the coordinator dies while it runs.
        await second.report_started(request.task_id, "node-1", worker_clock())
        third_runs = Runs()
        third, request = await restart(third_runs)
        launched.append(request)
        # 3rd: an old run's start arrives late, then this run's result with its start.
        await third.report_started(request.task_id, "node-1", worker_clock())
        result = {"result": "once", "nodeId": "node-2", "startedAt": worker_clock()}
        third_runs.results[request.task_id].set_result(result)
        await third.wait_job(job.id, 30)
        return job.id, launched, third

    job_id, launched, engine = run(scenario)
    assert [request.start_report_delay for request in launched] == [0.0, 0.0]  # requeued, then redelivered
    [task] = engine.writer.store.job_tasks(job_id)
    assert task.state is TaskState.COMPLETED and task.result == "once" and task.redelivered == 1


def test_a_worker_clock_off_is_kept_between_scheduled_and_now() -> None:
    scheduled = datetime.now(UTC) - timedelta(seconds=10)
    early = (scheduled - timedelta(hours=1)).isoformat()
    late = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert worker_time(early, scheduled) == scheduled
    assert worker_time(late, scheduled) <= datetime.now(UTC)
    assert scheduled < worker_time("not a time", scheduled) <= datetime.now(UTC)
