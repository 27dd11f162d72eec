"""Serving the app from a background thread: for embedding an engine in a program, tests and benchmarks."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

# uvicorn closes an idle kept-alive connection after 5 s, which is also how long httpx (the SDK, the CLI) keeps
# one for reuse: a request sent on it just as the server closes it fails with "connection reset by peer" (seen
# once in a full test run, a GET after a 4-5 s wait). The server keeping it longer than any such client makes
# the client the one that closes it.
KEEP_ALIVE_SECONDS = 75
# Below Linux's ephemeral ports (32768-60999: bind to port 0 and outgoing connections) and above Ray's worker
# ports (10002-19999 by default): a port free here stays free until someone asks for it by its number.
PICK_RANGE = (20000, 32767)
PICK_TRIES = 100


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now, for a server started a moment later. Picked in PICK_RANGE, not by
    the OS: a port the OS hands out (bind to 0) is one it may hand out again before the server binds it, to a
    Ray process's listener or an outgoing connection (a test's engine failed to start so: address already in
    use)."""
    for _ in range(PICK_TRIES):
        port = random.randint(*PICK_RANGE)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # the range is full: the OS's choice, with its small risk
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serves `app` with uvicorn on a daemon thread; yields its base URL once it accepts connections, and
    stops it on the way out."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_SECONDS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="tork-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    # uvicorn offers no start event to wait on; `started` flips once the socket listens.
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
