"""The executor's reports to the coordinator (worker/executor.py `Reports`), the policy alone: when outcomes go
at once, when they are held to go several together, and that starts ride along (the send is stood in for;
tests/e2e/test_executor_mode.py runs the real thing)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from tork_ray.worker import executor
from tork_ray.worker.executor import Outcome, Reports

SLOTS = 2


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Coordinator:
    """Records each report; answers at once, or when `gate` is set if one is given."""

    def __init__(self) -> None:
        self.reports: list[tuple[list[str], list[Outcome]]] = []
        self.run_seconds: list[float | None] = []
        self.gate: asyncio.Event | None = None

    async def report(self, started: list[str], outcomes: list[Outcome], run_seconds: float | None) -> None:
        self.reports.append((started, outcomes))
        self.run_seconds.append(run_seconds)
        if self.gate is not None:
            await self.gate.wait()

    def ids(self) -> list[list[str]]:
        return [[task_id for task_id, _ in outcomes] for _, outcomes in self.reports]


async def turns(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def running(reports: Reports, *task_ids: str) -> None:
    for task_id in task_ids:
        reports.submitted(task_id)
        reports.starting(task_id)


@in_loop
async def test_with_no_task_waiting_each_outcome_goes_at_once_with_its_start() -> None:
    coordinator = Coordinator()
    reports = Reports(coordinator.report, SLOTS)
    running(reports, "a")
    reports.ended("a", {"result": "1"}, 0.25)
    await turns()
    assert coordinator.reports == [(["a"], [("a", {"result": "1"})])]
    assert coordinator.run_seconds == [0.25]


@in_loop
async def test_with_more_tasks_waiting_than_slots_outcomes_are_held_until_few_enough_wait() -> None:
    coordinator = Coordinator()
    reports = Reports(coordinator.report, SLOTS)
    running(reports, "a", "b")
    for task_id in ("c", "d", "e", "f"):
        reports.submitted(task_id)  # four wait for the two slots
    reports.ended("a", {"result": "a"})  # four wait: held
    reports.starting("c")
    reports.ended("b", {"result": "b"})  # three wait (c started): held
    reports.starting("d")
    await turns()
    assert coordinator.reports == []
    reports.ended("c", {"result": "c"})  # two wait (d started), no more than the slots: their next must come
    reports.starting("e")
    await turns()
    assert coordinator.ids() == [["a", "b", "c"]]
    assert coordinator.reports[0][0] == ["a", "b", "c", "d"]  # the starts heard of by then, not e's


@in_loop
async def test_a_held_outcome_goes_after_the_hold_at_the_latest() -> None:
    coordinator = Coordinator()
    reports = Reports(coordinator.report, SLOTS)
    running(reports, "a", "b")
    for task_id in ("c", "d", "e"):
        reports.submitted(task_id)  # three wait: held
    reports.ended("a", {"result": "a"})
    await turns()
    assert coordinator.reports == []
    await asyncio.sleep(executor.REPORT_HOLD_SECONDS * 3)
    assert coordinator.ids() == [["a"]]


@in_loop
async def test_one_report_at_a_time_the_next_carries_what_ended_meanwhile() -> None:
    coordinator = Coordinator()
    coordinator.gate = asyncio.Event()
    reports = Reports(coordinator.report, SLOTS)
    running(reports, "a", "b", "c")
    reports.ended("a", None)  # cancelled before it started: reported as None, with no run time
    await turns()
    reports.ended("b", {"error": "failed"}, 1.0)
    reports.ended("c", {"result": "c"}, 3.0)
    await turns()
    assert coordinator.ids() == [["a"]]  # the first is still on its way
    coordinator.gate.set()
    await turns(6)
    assert coordinator.ids() == [["a"], ["b", "c"]]
    assert coordinator.reports[0][1] == [("a", None)]
    assert coordinator.run_seconds == [None, 2.0]  # the mean of the tasks that ran


@in_loop
async def test_a_batch_of_outcomes_goes_without_waiting_for_the_hold() -> None:
    coordinator = Coordinator()
    reports = Reports(coordinator.report, SLOTS)
    waiting = [f"w{i}" for i in range(executor.REPORT_BATCH + SLOTS + 1)]
    for task_id in waiting:
        reports.submitted(task_id)
    for index in range(executor.REPORT_BATCH):
        reports.ended(f"done{index}", {"result": ""})
    await turns()
    assert [len(ids) for ids in coordinator.ids()] == [executor.REPORT_BATCH]
