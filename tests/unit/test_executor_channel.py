"""The direct channel between the coordinator and an executor on its node (worker/channel.py,
coordinator/channels.py, ExecutorPool): real Unix sockets and frames; the executor actor is stood in for by a
peer that speaks the executor's side (tests/e2e/test_executor_mode.py runs the real thing)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import ActorDiedError

from tests.unit.test_executor_pool import FakeActor, Request, hex_id, in_loop, launch, node, nodes, recorded_kills
from tork_ray.coordinator.channels import PREFIX, Channel, ChannelServer, remove_stale_directories
from tork_ray.coordinator.executors import ExecutorPool
from tork_ray.settings import RuntimeSettings
from tork_ray.worker import channel as channel_module
from tork_ray.worker.channel import HEADER, ChannelClosed, frame, hello, read_message, read_raw

__all__ = ["nodes"]  # the fixture, used by name


class Peer:
    """The executor's side of a channel: connects when the pool asks (once `gate` is set), sends reports, and
    records what it is sent and how many reports were answered."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.gate = asyncio.Event()
        self.received: list[Any] = []
        self.acks = 0
        self.writer: asyncio.StreamWriter | None = None

    def remote(self, path: str) -> asyncio.Task[bool]:  # as `open_channel.remote(path)`
        return asyncio.get_running_loop().create_task(self._connect(path))

    async def _connect(self, path: str) -> bool:
        await self.gate.wait()
        reader, self.writer = await asyncio.open_unix_connection(path)
        self.writer.write(hello(self.token))
        asyncio.get_running_loop().create_task(self._read(reader))
        return True

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ChannelClosed):
            while True:
                message = await read_message(reader)
                if message[0] == "ack":
                    self.acks += 1
                else:
                    self.received.append(message)

    def report(self, started: list[str], outcomes: list[Any]) -> None:
        assert self.writer is not None
        self.writer.write(frame(("report", started, outcomes, 0.01)))


def peer_of(actor: FakeActor, open_at_once: bool = True) -> Peer:
    peer = Peer(actor.token)
    if open_at_once:
        peer.gate.set()
    actor.open_channel = peer  # type: ignore[attr-defined]
    return peer


@pytest.fixture(autouse=True)
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ChannelServer]]:
    """The channel servers the tests start are closed (their socket directories removed) at the end."""
    started: list[ChannelServer] = []
    start = ChannelServer.started.__func__  # type: ignore[attr-defined]

    async def recorded(cls: type[ChannelServer]) -> ChannelServer | None:
        server = await start(cls)
        if server is not None:
            started.append(server)
        return server

    monkeypatch.setattr(ChannelServer, "started", classmethod(recorded))
    yield started
    for server in started:
        server.close()


def channel_pool() -> ExecutorPool:
    return ExecutorPool("coordinator", "ns", RuntimeSettings(type="shell"), own_node=hex_id("a"))


async def with_open_channel(pool: ExecutorPool, first: str) -> tuple[FakeActor, Peer]:
    """Launches `first` (the executor made, not placed yet), then places it: its channel opens."""
    FakeActor.start_at_once = False
    await launch(pool, first)
    (actor,) = FakeActor.made
    peer = peer_of(actor)
    actor.ready_ref.set_result(None)
    await until(lambda: peer.writer is not None)
    await asyncio.sleep(0.01)  # the pool has seen the executor prove its token
    return actor, peer


async def until(check: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.005)


@in_loop
async def test_tasks_sent_while_the_channel_opens_wait_for_it_and_go_on_it_reports_come_back_on_it(
    nodes: list[dict[str, Any]],
) -> None:
    """What Ray's calls carried before the channel opened is not overtaken: the tasks launched meanwhile wait, and
    go on the channel once it is open; the executor's reports come on it and are answered."""
    nodes += [node("a", default=2)]
    FakeActor.start_at_once = False
    pool = channel_pool()
    (before,) = await launch(pool, "r1")  # the executor is not placed yet: a Ray call
    (actor,) = FakeActor.made
    peer = peer_of(actor, open_at_once=False)
    actor.ready_ref.set_result(None)  # placed: the pool asks it to open its channel
    await asyncio.sleep(0.01)
    (meanwhile,) = await launch(pool, "r2")
    await asyncio.sleep(0.01)
    assert actor.sent == ["r1"] and not peer.received  # r2 waits for the channel
    peer.gate.set()
    await until(lambda: peer.received)
    assert peer.received == [("submit", [Request("r2")])] and actor.sent == ["r1"]
    peer.report(["r1", "r2"], [("r1", {"result": "one"}), ("r2", {"result": "two"})])
    await until(lambda: meanwhile.done() and peer.acks == 1)
    assert before.result() == {"result": "one"} and meanwhile.result() == {"result": "two"}
    assert pool.reports == {"channel": 1}
    (cancelled,) = await launch(pool, "r3")
    pool.cancel(cancelled)
    await until(lambda: len(peer.received) == 3)
    assert peer.received[1:] == [("submit", [Request("r3")]), ("cancel", "r3")] and not actor.cancel.calls


@in_loop
async def test_what_a_dead_executor_reported_before_it_died_counts(nodes: list[dict[str, Any]]) -> None:
    """Its death can be heard of before its last report is read: the channel is read to its end first."""
    nodes += [node("a", default=2)]
    pool = channel_pool()
    actor, peer = await with_open_channel(pool, "warm")
    done, lost = await launch(pool, "done", "lost")
    await until(lambda: len(peer.received) == 1)
    peer.report(["warm", "done", "lost"], [("done", {"result": "ok"})])
    assert peer.writer is not None
    peer.writer.close()
    actor.death.set_exception(ActorDiedError())
    await until(lambda: lost.done())
    assert done.result() == {"result": "ok"}
    assert isinstance(lost.exception(), ActorDiedError)  # started, then lost with its executor


@in_loop
async def test_a_channel_that_closes_while_its_executor_lives_stops_the_executor(
    nodes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes += [node("a", default=1)]
    killed = recorded_kills(monkeypatch)
    pool = channel_pool()
    actor, peer = await with_open_channel(pool, "r1")
    assert peer.writer is not None
    peer.writer.close()
    await until(lambda: killed == [actor])  # its death (watched through Ray) then ends its tasks as usual


@in_loop
async def test_executors_placed_at_once_share_one_server(
    nodes: list[dict[str, Any]], servers: list[ChannelServer]
) -> None:
    """Two queues' executors on the coordinator's node, placed in the same turn: one server, both channels on it."""
    nodes += [node("a", default=1, other=1)]
    FakeActor.start_at_once = False
    pool = channel_pool()
    await launch(pool, "r1")
    pool.launch(Request("r2"), "queue:other")  # type: ignore[arg-type]
    await asyncio.sleep(0)
    peers = [peer_of(actor) for actor in FakeActor.made]
    for actor in FakeActor.made:
        actor.ready_ref.set_result(None)
    await until(lambda: all(peer.writer is not None for peer in peers))
    assert len(servers) == 1 and len(FakeActor.made) == 2  # both connected to the one server
    await asyncio.sleep(0.01)
    await launch(pool, "r3")
    pool.launch(Request("r4"), "queue:other")  # type: ignore[arg-type]
    await until(lambda: all(peer.received for peer in peers))  # each on its own channel
    assert sorted(peer.received[0][1][0].task_id for peer in peers) == ["r3", "r4"]


@in_loop
async def test_an_executor_not_on_the_coordinators_node_has_no_channel(nodes: list[dict[str, Any]]) -> None:
    nodes += [node("b", default=1)]
    pool = channel_pool()
    await launch(pool, "r1")
    await asyncio.sleep(0.01)
    (actor,) = FakeActor.made
    assert actor.sent == ["r1"] and not hasattr(actor, "open_channel")


@in_loop
async def test_the_server_refuses_a_wrong_token_and_a_peer_that_proves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "HELLO_SECONDS", 0.2)
    server = await ChannelServer.started()
    assert server is not None
    served: list[Channel] = []

    async def serve(channel: Channel) -> None:
        served.append(channel)
        with contextlib.suppress(ChannelClosed):
            await channel.receive()

    class Opener:
        def __init__(self, token: str) -> None:
            self.token = token

        def remote(self, path: str) -> asyncio.Task[bool]:
            async def connect() -> bool:
                for sent in (hello("not-the-token"), b"", hello(self.token)):  # wrong, silent, right
                    reader, writer = await asyncio.open_unix_connection(path)
                    writer.write(sent)
                    if sent != hello(self.token):
                        assert await reader.read() == b""  # closed by the server
                return True

            return asyncio.get_running_loop().create_task(connect())

    executor = type("Executor", (), {"open_channel": Opener("right-token")})()
    assert await server.open(executor, "right-token", serve)
    assert len(served) == 1
    server.close()


@in_loop
async def test_a_frame_larger_than_the_limit_closes_the_channel() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(HEADER.pack(300) + b"x" * 300)
    with pytest.raises(ChannelClosed, match="300 bytes"):
        await read_raw(reader, 256)
    reader = asyncio.StreamReader()
    reader.feed_data(frame(("submit", [Request("r1")])))
    reader.feed_eof()
    assert await read_message(reader) == ("submit", [Request("r1")])
    with pytest.raises(ChannelClosed):
        await read_message(reader)
    assert pickle.loads(frame("x")[HEADER.size :]) == "x"


def test_the_socket_directories_of_gone_coordinators_are_removed_the_others_kept(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid no longer runs
    live = subprocess.Popen(["sleep", "30"])
    try:
        names = [f"{PREFIX}{gone.pid}-a", f"{PREFIX}{live.pid}-b", f"{PREFIX}{os.getpid()}-c", "tork-chan-x-d", "other"]
        for name in names:
            (tmp_path / name).mkdir()
        remove_stale_directories(str(tmp_path))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
    finally:
        live.kill()
        live.wait()
