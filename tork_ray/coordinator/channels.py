"""The coordinator's end of the direct channels to the executors on its own node (worker/channel.py): one Unix
socket server, lazily started, that hands each connection to the executor whose token it proves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from tork_ray.worker.channel import ChannelClosed, frame, read_hello, read_message, same_token

log = logging.getLogger(__name__)

Serve = Callable[["Channel"], Awaitable[None]]
PREFIX = "tork-chan-"  # the socket's directory: PREFIX, the coordinator's pid, a random part
OPEN_SECONDS = 5.0  # for an executor to connect and prove its token; past it, Ray's calls carry its messages


class Channel:
    """One executor's channel, as the coordinator holds it: send() writes a message (buffered by the transport:
    the coordinator's loop never waits on an executor); receive() reads what the executor sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.closed = asyncio.Event()  # set once the executor's side is gone and everything it sent was read

    def send(self, message: Any) -> None:
        if not self._writer.is_closing():
            self._writer.write(frame(message))

    async def receive(self) -> Any:
        return await read_message(self._reader)

    def close(self) -> None:
        self._writer.close()


class ChannelServer:
    """Accepts the executors' connections on a socket in a directory of its own (0700, mkdtemp's)."""

    def __init__(self) -> None:
        remove_stale_directories(tempfile.gettempdir())
        self._directory = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        self.path = os.path.join(self._directory, "c.sock")
        self._server: asyncio.AbstractServer | None = None
        self._expected: dict[str, Serve] = {}  # token -> what serves the executor that proves it

    @classmethod
    async def started(cls) -> ChannelServer | None:
        """A server listening, or None (said in the log) if it cannot: Ray's calls then carry every message."""
        server = cls()
        try:
            server._server = await asyncio.start_unix_server(server._accept, server.path)
        except OSError as exc:
            log.warning("the executors' channel could not be opened, Ray's calls carry the tasks: %s", exc)
            server.close()
            return None
        return server

    async def open(self, executor: Any, token: str, serve: Serve) -> bool:
        """Asks the executor actor to connect (its `open_channel`), and waits until it has proved `token`, within
        OPEN_SECONDS: True once `serve(channel)` runs (for as long as the channel is open), else False. Raises the
        executor's RayError if it dies meanwhile."""
        attached = asyncio.Event()

        async def attach(channel: Channel) -> None:
            attached.set()
            await serve(channel)

        self._expected[token] = attach
        try:
            if await asyncio.wait_for(executor.open_channel.remote(self.path), OPEN_SECONDS):
                await asyncio.wait_for(attached.wait(), OPEN_SECONDS)
                return True
            return False
        except TimeoutError:
            return False
        finally:
            self._expected.pop(token, None)  # a connection that comes later is refused

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._expected.clear()
        shutil.rmtree(self._directory, ignore_errors=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            token = await read_hello(reader)
        except ChannelClosed as exc:
            log.warning("a connection to the executors' channel was refused: %s", exc)
            writer.close()
            return
        serve = next((self._expected.pop(t) for t in list(self._expected) if same_token(token, t)), None)
        if serve is None:
            log.warning("a connection to the executors' channel was refused: its token is no executor's")
            writer.close()
            return
        channel = Channel(reader, writer)
        try:
            await serve(channel)
        finally:
            channel.close()
            channel.closed.set()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def remove_stale_directories(root: str) -> None:
    """Removes the socket directories of coordinators that are gone (killed outright, they left theirs): those
    of this user whose pid no longer runs. A pid run again by another process keeps its directory, unharmed."""
    for entry in os.scandir(root):
        pid = entry.name[len(PREFIX) :].split("-", 1)[0]
        if not entry.name.startswith(PREFIX) or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid() or not entry.is_dir(follow_symlinks=False):
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:  # alive and someone else's, or gone meanwhile
            continue
