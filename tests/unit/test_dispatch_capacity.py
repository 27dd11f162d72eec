"""Queue capacity counts live nodes only, and is read again once a task is lost (its node may be the one that
died): the backlog is then kept by the coordinator instead of being handed to Ray for a dead node's slots.
Ray's node list is stood in for (the dispatcher's logic alone; tests/e2e/test_node_death.py runs the real thing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from ray.exceptions import ActorDiedError, WorkerCrashedError

from tork_ray.coordinator import dispatch
from tork_ray.coordinator.dispatch import Dispatcher, NotStarted, queue_capacity
from tork_ray.runtime.base import RunRequest, Step


def node(alive: bool, **queues: int) -> dict[str, Any]:
    resources = {"CPU": 1.0, "tork:head": 1.0, **{f"queue:{name}": float(n) for name, n in queues.items()}}
    return {"NodeID": "n", "Alive": alive, "Resources": resources}


def test_capacity_counts_the_queue_slots_of_live_nodes_only() -> None:
    nodes = [node(True, default=4, gpu=1), node(True, default=2), node(False, default=8, other=3)]
    assert queue_capacity(nodes) == {"default": 6, "gpu": 1}
    assert queue_capacity([]) == {}


def test_a_lost_task_makes_the_dispatcher_read_capacity_again(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [node(True, q=1)]
    monkeypatch.setattr(dispatch.ray, "nodes", lambda: nodes)
    launched: dict[str, asyncio.Future[Any]] = {}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        def launch(request: Any, _resource: str) -> asyncio.Future[Any]:
            launched[request] = loop.create_future()
            return launched[request]

        async def on_result(_task_id: str, _outcome: Any) -> None:
            return None

        dispatcher = Dispatcher(launch, on_result)
        dispatcher.enqueue("t1", "q", 0, "t1")  # type: ignore[arg-type]  # the request is opaque here
        dispatcher.enqueue("t2", "q", 0, "t2")  # type: ignore[arg-type]
        assert list(launched) == ["t1"]  # one slot: t2 waits in the backlog
        nodes[0] = node(False, q=1)  # the node dies; the capacity read a moment ago still counts it
        launched["t1"].set_exception(WorkerCrashedError())
        for _ in range(10):  # let the dispatcher handle the loss and pump
            await asyncio.sleep(0)
        assert list(launched) == ["t1"], "t2 was handed to Ray for the dead node's slot"
        assert dispatcher.queue_info("q").size == 1

    asyncio.run(scenario())


def test_a_launch_that_fails_leaves_the_task_queued_for_the_next_pump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch.ray, "nodes", lambda: [node(True, q=2)])
    launched: list[str] = []
    failing = [True]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        def launch(request: Any, _resource: str) -> asyncio.Future[Any]:
            if failing[0]:
                raise RuntimeError("no live node serves queue:q")  # an executor pool's view behind Ray's
            launched.append(request)
            return loop.create_future()

        async def on_result(_task_id: str, _outcome: Any) -> None:
            return None

        dispatcher = Dispatcher(launch, on_result)
        dispatcher.enqueue("t1", "q", 0, "t1")  # type: ignore[arg-type]  # the request is opaque here
        assert launched == [] and dispatcher.queue_info("q").size == 1  # not lost: still waiting
        failing[0] = False
        dispatcher.pump_all()  # what the coordinator's pump loop does every PUMP_SECONDS
        assert launched == ["t1"] and dispatcher.queue_info("q").size == 0

    asyncio.run(scenario())


def test_a_task_lost_before_it_was_heard_to_start_is_sent_again_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An executor died with tasks it had not reported started (queued in it, or only just started): each is
    sent again, reporting its start at once; lost the same way a second time, it fails as lost."""
    monkeypatch.setattr(dispatch.ray, "nodes", lambda: [node(True, q=1)])
    launched: list[tuple[RunRequest, asyncio.Future[Any]]] = []
    results: list[tuple[str, Any]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        def launch(request: RunRequest, _resource: str) -> asyncio.Future[Any]:
            launched.append((request, loop.create_future()))
            return launched[-1][1]

        async def on_result(task_id: str, outcome: Any) -> None:
            results.append((task_id, outcome))

        dispatcher = Dispatcher(launch, on_result)
        request = RunRequest(task_id="t1", job_id="j", main=Step(name="main", run="true"), start_report_delay=0.05)
        dispatcher.enqueue("t1", "q", 3, request)
        launched[0][1].set_exception(NotStarted(ActorDiedError()))
        await poll(lambda: len(launched) == 2)
        assert launched[1][0] == replace(request, start_report_delay=0.0) and results == []
        launched[1][1].set_exception(NotStarted(ActorDiedError()))
        await poll(lambda: bool(results))
        assert len(launched) == 2
        ((task_id, outcome),) = results
        assert task_id == "t1" and outcome["error"].startswith("task lost: the executor process running the task died")

    asyncio.run(scenario())


async def poll(condition: Callable[[], bool]) -> None:
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the dispatcher did not get there")
