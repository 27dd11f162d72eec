"""ExecutorPool (coordinator/executors.py), its choices alone: Ray's node list and the executor actors are
stood in for (tests/e2e/test_executor_mode.py runs the real thing)."""

from __future__ import annotations

from itertools import count
from typing import Any, ClassVar

import pytest
from ray.exceptions import ActorDiedError

from tork_ray.coordinator import executors
from tork_ray.coordinator.executors import ExecutorPool
from tork_ray.settings import RuntimeSettings


class FakeActor:
    """What `QueueExecutorActor.options(...).remote(...)` makes: records where it went and its calls."""

    made: ClassVar[list[FakeActor]] = []
    refs = count()

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.calls: list[Any] = []
        self.run = self
        self.ready_ref = f"ready-{next(self.refs)}"
        self.__ray_ready__ = type("Ready", (), {"remote": lambda _self: self.ready_ref})()

    @classmethod
    def options_(cls, **options: Any) -> Any:
        class Maker:
            def remote(self, *_args: Any) -> FakeActor:
                actor = cls(options)
                cls.made.append(actor)
                return actor

        return Maker()

    def remote(self, request: Any) -> str:
        self.calls.append(request)
        return f"ref-{next(self.refs)}"

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
    monkeypatch.setattr(executors.ray, "nodes", lambda: listed)
    monkeypatch.setattr(executors.ray, "kill", lambda *_args, **_kw: None)
    monkeypatch.setattr(executors.ray, "wait", lambda refs, timeout: ([r for r in refs if r in placed], []))
    placed.clear()
    monkeypatch.setattr(executors, "QueueExecutorActor", type("Maker", (), {"options": FakeActor.options_}))
    return listed


placed: set[Any] = set()  # the ready refs of the executors Ray has placed


def pool() -> ExecutorPool:
    return ExecutorPool("coordinator", "ns", RuntimeSettings(type="shell"))


def test_executors_are_made_for_the_launched_queue_only_one_per_live_node(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=2, gpu=1), node("b", default=1), node("c", alive=False, default=4)]
    pool().launch("r1", "queue:default")  # type: ignore[arg-type]  # the request is opaque here
    assert sorted((a.node, a.options["resources"]["queue:default"]) for a in FakeActor.made) == [("a", 2.0), ("b", 1.0)]


def test_each_call_goes_to_the_executor_with_the_most_room(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=2), node("b", default=1)]
    executors_pool = pool()
    for request in ("r1", "r2", "r3"):
        executors_pool.launch(request, "queue:default")  # type: ignore[arg-type]
    by_node = {actor.node: actor.calls for actor in FakeActor.made}
    assert sorted(len(calls) for calls in by_node.values()) == [1, 2]
    assert len(by_node["a"]) == 2  # two slots there, one on b: never more calls than slots while room is left


def test_a_dead_executor_is_made_again_on_its_live_node_but_not_on_a_dead_one(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=1), node("b", default=1)]
    executors_pool = pool()
    on_a = executors_pool.launch("r1", "queue:default")  # type: ignore[arg-type]
    on_b = executors_pool.launch("r2", "queue:default")  # type: ignore[arg-type]
    first_a, first_b = FakeActor.made
    executors_pool.done(on_a, ActorDiedError())  # a's process died; a lives
    nodes[1] = node("b", alive=False, default=1)
    executors_pool.done(on_b, ActorDiedError())  # b died with its node
    executors_pool.launch("r3", "queue:default")  # type: ignore[arg-type]
    remade = FakeActor.made[2:]
    assert [actor.node for actor in remade] == ["a"] and remade[0].calls == ["r3"]
    assert first_a.calls == ["r1"] and first_b.calls == ["r2"]


def test_an_answered_call_frees_its_room(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("a", default=1), node("b", default=1)]
    executors_pool = pool()
    ref = executors_pool.launch("r1", "queue:default")  # type: ignore[arg-type]
    executors_pool.done(ref, None)
    executors_pool.launch("r2", "queue:default")  # type: ignore[arg-type]
    executors_pool.launch("r3", "queue:default")  # type: ignore[arg-type]
    assert sorted(len(actor.calls) for actor in FakeActor.made) == [1, 2]  # r1 then r2 on one, r3 on the other
    assert len(FakeActor.made) == 2  # no executor made again for an answered call


def test_an_executor_left_unplaced_is_named_once_in_the_log(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    nodes += [node("a", default=2), node("b", default=1)]
    clock = [100.0]
    monkeypatch.setattr(executors.time, "monotonic", lambda: clock[0])
    executors_pool = pool()
    executors_pool.launch("r1", "queue:default")  # type: ignore[arg-type]
    on_a, on_b = FakeActor.made
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
