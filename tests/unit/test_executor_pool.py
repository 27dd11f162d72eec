"""ExecutorPool (coordinator/executors.py), its choices alone: Ray's node list and the executor actors are
stood in for (tests/e2e/test_executor_mode.py runs the real thing)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError

from tork_ray.coordinator import executors
from tork_ray.coordinator.dispatch import NotStarted, lost_error
from tork_ray.coordinator.executors import ExecutorPool
from tork_ray.settings import RuntimeSettings


@dataclass(frozen=True)
class Request:
    task_id: str


class _Method:
    def __init__(self, answer: Any) -> None:
        self.calls: list[Any] = []
        self._answer = answer

    def remote(self, *args: Any) -> Any:
        self.calls.append(args[0] if len(args) == 1 else args)
        return self._answer()


class FakeActor:
    """What `QueueExecutorActor.options(...).remote(...)` makes: records where it went and its calls."""

    made: ClassVar[list[FakeActor]] = []
    start_at_once: ClassVar[bool] = True  # its __ray_ready__ answers at once: Ray placed it and it started

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.ready_ref: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.start_at_once:
            self.ready_ref.set_result(None)
        self.__ray_ready__ = _Method(lambda: self.ready_ref)
        self.submit = _Method(lambda: None)
        self.cancel = _Method(lambda: None)
        self.death: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.until_stopped = _Method(lambda: self.death)
        self.token = ""

    @classmethod
    def options_(cls, **options: Any) -> Any:
        class Maker:
            def remote(self, *args: Any) -> FakeActor:
                actor = cls(options)
                actor.token = args[4]  # what it sends with its reports
                cls.made.append(actor)
                return actor

        return Maker()

    @property
    def sent(self) -> list[str]:
        """The task ids it was sent, in order, whatever the batches."""
        return [request.task_id for batch in self.submit.calls for request in batch]

    @property
    def node(self) -> str:
        return str(self.options["scheduling_strategy"].node_id)[0]  # the name hex_id repeated


def hex_id(name: str) -> str:
    return name * 56  # Ray checks a node id's form: 28 bytes in hex


def node(name: str, alive: bool = True, **queues: int) -> dict[str, Any]:
    return {"NodeID": hex_id(name), "Alive": alive, "Resources": {f"queue:{q}": float(n) for q, n in queues.items()}}


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    FakeActor.made = []
    FakeActor.start_at_once = True
    monkeypatch.setattr(executors.ray, "nodes", lambda: listed)
    monkeypatch.setattr(executors.ray, "kill", lambda *_args, **_kw: None)
    monkeypatch.setattr(executors.ray, "wait", lambda refs, timeout: ([r for r in refs if r in placed], []))
    placed.clear()
    monkeypatch.setattr(executors, "QueueExecutorActor", type("Maker", (), {"options": FakeActor.options_}))
    return listed


placed: set[Any] = set()  # the ready refs of the executors Ray has placed


def recorded_kills(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The executors `ray.kill` is called on, in order."""
    killed: list[Any] = []
    monkeypatch.setattr(executors.ray, "kill", lambda handle, **_kw: killed.append(handle))
    return killed


def pool() -> ExecutorPool:
    return ExecutorPool("coordinator", "ns", RuntimeSettings(type="shell"))


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """The test run in an event loop of its own (the pool makes its futures and sends on the running loop)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def report(executors_pool: ExecutorPool, started: list[str], outcomes: list[Any], seconds: float | None = None) -> None:
    """A report, as the executor the first of the tasks was sent to makes it (its token with it)."""
    first = (started or [outcome[0] for outcome in outcomes])[0]
    (actor,) = [actor for actor in FakeActor.made if first in actor.sent]
    executors_pool.report(started, outcomes, seconds, actor.token)


async def launch(executors_pool: ExecutorPool, *task_ids: str) -> list[asyncio.Future[Any]]:
    """Launches in one loop turn, then lets the turn end (the sends go out at its end)."""
    futures = [executors_pool.launch(Request(task_id), "queue:default") for task_id in task_ids]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    return futures


@in_loop
async def test_executors_are_made_for_the_launched_queue_only_one_per_live_node(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=2, gpu=1), node("b", default=1), node("c", alive=False, default=4)]
    await launch(pool(), "r1")
    assert sorted((a.node, a.options["resources"]["queue:default"]) for a in FakeActor.made) == [("a", 2.0), ("b", 1.0)]


@in_loop
async def test_tasks_go_to_the_executor_with_the_most_room_one_call_per_executor_and_turn(
    nodes: list[dict[str, Any]],
) -> None:
    nodes += [node("a", default=2), node("b", default=1)]
    await launch(pool(), "r1", "r2", "r3")
    by_node = {actor.node: actor for actor in FakeActor.made}
    assert [len(batch) for batch in by_node["a"].submit.calls] == [2]  # two slots there: two of the three
    assert [len(batch) for batch in by_node["b"].submit.calls] == [1]


@in_loop
async def test_a_report_answers_the_launches_and_frees_their_room(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=1), node("b", default=1)]
    executors_pool = pool()
    (first,) = await launch(executors_pool, "r1")
    report(executors_pool, [], [("r1", {"result": "done"})])
    assert first.result() == {"result": "done"}
    executors_pool.done(first, None)
    await launch(executors_pool, "r2", "r3")
    assert sorted(len(actor.sent) for actor in FakeActor.made) == [1, 2]  # r1 then r2 on one, r3 on the other
    assert len(FakeActor.made) == 2  # no executor made again for an answered task


@in_loop
async def test_a_queue_of_short_tasks_may_queue_more_in_its_executors_than_one_of_long_tasks(
    nodes: list[dict[str, Any]],
) -> None:
    nodes += [node("a", default=2)]
    executors_pool = pool()
    assert executors_pool.in_flight_per_slot("default") == executors.FIRST_IN_FLIGHT_PER_SLOT
    short = await launch(executors_pool, "s1", "s2")
    report(executors_pool, [], [("s1", {"result": ""}), ("s2", {"result": ""})], 0.002)
    assert executors_pool.in_flight_per_slot("default") == executors.MAX_IN_FLIGHT_PER_SLOT
    for future in short:
        executors_pool.done(future, None)
    for index in range(20):  # the queue's tasks now run 10 s each: in a few reports, none waits in an executor
        (future,) = await launch(executors_pool, f"l{index}")
        report(executors_pool, [], [(f"l{index}", {"result": ""})], 10.0)
        executors_pool.done(future, None)
    assert executors_pool.in_flight_per_slot("default") == 1
    assert executors_pool.in_flight_per_slot("other") == executors.FIRST_IN_FLIGHT_PER_SLOT  # per queue


@in_loop
async def test_a_dead_executors_started_tasks_are_lost_the_others_not_started(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=3)]
    executors_pool = pool()
    running, heard, queued = await launch(executors_pool, "r1", "r2", "r3")
    report(executors_pool, ["r1"], [])  # r1's start came with a report, r2's with its own start report
    executors_pool.started(["r2"])
    (actor,) = FakeActor.made
    actor.death.set_exception(ActorDiedError())
    await asyncio.sleep(0)
    assert isinstance(running.exception(), ActorDiedError) and isinstance(heard.exception(), ActorDiedError)
    assert isinstance(queued.exception(), NotStarted)


@in_loop
async def test_a_dead_executor_is_made_again_on_its_live_node_but_not_on_a_dead_one(
    nodes: list[dict[str, Any]],
) -> None:
    nodes += [node("a", default=1), node("b", default=1)]
    executors_pool = pool()
    on_a, on_b = await launch(executors_pool, "r1", "r2")
    first_a, first_b = sorted(FakeActor.made, key=lambda actor: actor.node)
    first_a.death.set_exception(ActorDiedError())  # a's process died; a lives
    nodes[1] = node("b", alive=False, default=1)
    first_b.death.set_exception(ActorDiedError())  # b died with its node
    await asyncio.sleep(0)
    for future in (on_a, on_b):
        executors_pool.done(future, None)
    await launch(executors_pool, "r3")
    remade = FakeActor.made[2:]
    assert [actor.node for actor in remade] == ["a"] and remade[0].sent == ["r3"]
    assert first_a.sent == ["r1"] and first_b.sent == ["r2"]


@in_loop
async def test_a_cancel_before_the_send_sends_nothing_after_it_asks_the_executor(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=2)]
    executors_pool = pool()
    unsent = executors_pool.launch(Request("r1"), "queue:default")  # type: ignore[arg-type]
    executors_pool.cancel(unsent)
    assert unsent.result() is None  # cancelled: never sent
    (sent,) = await launch(executors_pool, "r2")
    executors_pool.cancel(sent)
    (actor,) = FakeActor.made
    assert actor.sent == ["r2"] and actor.cancel.calls == ["r2"]
    assert not sent.done()  # its outcome (None) comes with the executor's report once it has stopped


@in_loop
async def test_an_executor_left_unplaced_is_named_once_in_the_log(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    nodes += [node("a", default=2), node("b", default=1)]
    clock = [100.0]
    monkeypatch.setattr(executors.time, "monotonic", lambda: clock[0])
    FakeActor.start_at_once = False
    executors_pool = pool()
    await launch(executors_pool, "r1")
    on_a, on_b = sorted(FakeActor.made, key=lambda actor: actor.node)
    assert executors_pool.check_placement() == []  # neither placed, but not yet past the delay: nothing said
    clock[0] += executors.PLACEMENT_WARNING_SECONDS
    placed.add(on_a.ready_ref)  # a is placed; b's slots are held by something else
    assert executors_pool.check_placement() == [(hex_id("b"), "queue:default")]
    assert executors_pool.check_placement() == [(hex_id("b"), "queue:default")]
    warnings = [record.getMessage() for record in caplog.records if "is not placed" in record.getMessage()]
    assert len(warnings) == 1, warnings  # once, however often it is checked
    assert hex_id("b") in warnings[0] and "another engine with worker.executor = node" in warnings[0]
    placed.add(on_b.ready_ref)
    assert executors_pool.check_placement() == []


@in_loop
async def test_an_executor_idle_for_long_is_stopped_and_made_again_by_the_next_task(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its queue's slots go back to the node (another engine, the autoscaler) while it has nothing to run."""
    killed = recorded_kills(monkeypatch)
    clock = [1000.0]
    monkeypatch.setattr(executors.time, "monotonic", lambda: clock[0])
    nodes += [node("a", default=1), node("b", default=1)]
    executors_pool = pool()
    (busy,) = await launch(executors_pool, "r1")
    on_a, on_b = sorted(FakeActor.made, key=lambda actor: actor.node)
    worker, spare = (on_a, on_b) if on_a.sent else (on_b, on_a)
    clock[0] += 5
    assert executors_pool.stop_idle(idle_seconds=10) == []
    clock[0] += 6  # the spare, never sent a task, has been idle 11 s; the worker is busy however long
    assert [key[0][0] for key in executors_pool.stop_idle(idle_seconds=10)] == [spare.node]
    clock[0] += 100
    assert executors_pool.stop_idle(idle_seconds=10) == []
    report(executors_pool, [], [("r1", {"result": ""})])
    executors_pool.done(busy, None)
    clock[0] += 9  # idle since its task ended, not since it was made
    assert executors_pool.stop_idle(idle_seconds=10) == []
    clock[0] += 1
    assert [key[0][0] for key in executors_pool.stop_idle(idle_seconds=10)] == [worker.node]
    assert killed == [spare, worker]
    await launch(executors_pool, "r2")
    assert len(FakeActor.made) == 4 and sum(actor.sent == ["r2"] for actor in FakeActor.made[2:]) == 1


@in_loop
async def test_the_tasks_of_an_executor_that_died_with_its_node_are_lost_with_the_node(
    nodes: list[dict[str, Any]],
) -> None:
    """The error a user reads names the node's death, as for a Ray task, not only the executor's."""
    nodes += [node("a", default=1), node("b", default=1)]
    executors_pool = pool()
    on_a, on_b = await launch(executors_pool, "r1", "r2")
    executors_pool.started(["r1", "r2"])
    first_a, first_b = sorted(FakeActor.made, key=lambda actor: actor.node)
    nodes[1] = node("b", alive=False, default=1)
    first_a.death.set_exception(ActorDiedError())
    first_b.death.set_exception(ActorDiedError())
    await asyncio.sleep(0)
    assert lost_error(on_a.exception()).startswith("task lost: the executor process running the task died")  # type: ignore[arg-type]
    assert lost_error(on_b.exception()).startswith("task lost: the node running the task died")  # type: ignore[arg-type]


@in_loop
async def test_the_tasks_of_an_executor_that_never_started_are_sent_again_whatever_came_before(
    nodes: list[dict[str, Any]],
) -> None:
    """Made on a node that then died, it was never placed: its tasks certainly never ran (NotStarted.certain)."""
    FakeActor.start_at_once = False
    nodes += [node("a", default=1)]
    (queued,) = await launch(pool(), "r1")
    (actor,) = FakeActor.made
    actor.ready_ref.set_exception(ActorDiedError())
    await asyncio.sleep(0)
    error = queued.exception()
    assert isinstance(error, NotStarted) and error.certain


@in_loop
async def test_an_executor_unavailable_for_a_while_is_not_taken_for_dead(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's ActorUnavailableError (a network fault, a node not yet declared dead) may pass: its tasks may still be
    running, so none is ended until the executor is known dead."""
    monkeypatch.setattr(executors, "UNAVAILABLE_RETRY_SECONDS", 0)
    nodes += [node("a", default=1)]
    (running,) = await launch(pool(), "r1")
    (actor,) = FakeActor.made
    deaths = iter([ActorUnavailableError("socket closed", None), ActorDiedError()])
    calls = []

    def until_stopped() -> asyncio.Future[None]:
        calls.append(1)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_exception(next(deaths))
        return future

    actor.death.set_exception(ActorUnavailableError("socket closed", None))
    actor.until_stopped = _Method(until_stopped)
    for _ in range(5):
        await asyncio.sleep(0)
    assert isinstance(running.exception(), NotStarted) and len(calls) == 2


@in_loop
async def test_a_report_settles_only_what_was_sent_to_the_executor_making_it(nodes: list[dict[str, Any]]) -> None:
    """After a coordinator restart, an executor of its previous process may report for a moment about a task the
    new process sent again under the same id: an old attempt's outcome, which must not settle the new one."""
    nodes += [node("a", default=1)]
    executors_pool = pool()
    (again,) = await launch(executors_pool, "r1")
    executors_pool.report(["r1"], [("r1", {"error": "the old attempt's container was removed"})], 1.0, "old-token")
    await asyncio.sleep(0)
    assert not again.done()
    report(executors_pool, [], [("r1", {"result": "new"})])
    assert again.result() == {"result": "new"}


@in_loop
async def test_an_executor_still_starting_is_never_stopped_idle_and_is_stopped_once_started_at_shutdown(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray ignores a kill that reaches an actor's process while it starts, and that process keeps the queue's
    slots for good: an executor is killed only once it has started (or after stop_all's wait)."""
    killed = recorded_kills(monkeypatch)
    nodes += [node("a", default=1), node("b", default=1)]
    FakeActor.start_at_once = False
    executors_pool = pool()
    await launch(executors_pool, "r1")
    on_a, on_b = sorted(FakeActor.made, key=lambda actor: actor.node)
    assert executors_pool.stop_idle(idle_seconds=0) == [] and killed == []  # idle, but not started
    stopping = asyncio.ensure_future(executors_pool.stop_all(wait_seconds=30))
    await asyncio.sleep(0.01)
    assert killed == []  # it waits for them to start
    on_a.ready_ref.set_result(None)
    on_b.ready_ref.set_result(None)
    await asyncio.wait_for(stopping, 5)
    assert sorted(id(actor) for actor in killed) == sorted(id(actor) for actor in (on_a, on_b))


@in_loop
async def test_stop_all_kills_an_executor_that_never_starts_after_its_wait(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    killed = recorded_kills(monkeypatch)
    nodes += [node("a", default=1)]
    FakeActor.start_at_once = False
    executors_pool = pool()
    await launch(executors_pool, "r1")
    (never,) = FakeActor.made  # its slots are held elsewhere: it is never placed
    await executors_pool.stop_all(wait_seconds=0.05)
    assert killed == [never]


@in_loop
async def test_a_task_still_running_at_stop_is_left_for_the_next_start(nodes: list[dict[str, Any]]) -> None:
    """Stopping the engine kills its executors; their running tasks are not failed as lost (their retry rules
    would decide at a mere stop): the store keeps them RUNNING and the next start redelivers them."""
    nodes += [node("a", default=1)]
    executors_pool = pool()
    (running,) = await launch(executors_pool, "r1")
    report(executors_pool, ["r1"], [])  # its start heard of: were its executor to die, it would be lost
    await executors_pool.stop_all(wait_seconds=1)
    (actor,) = FakeActor.made
    actor.death.set_exception(ActorDiedError())
    await asyncio.sleep(0.01)
    assert not running.done()
