"""A real HTTP receiver for webhook tests: a threaded http.server on 127.0.0.1 that records every request and
answers as each test asks (status sequences, hanging, endless bodies, redirects)."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # path -> what to do: a list of statuses answered in turn (the last one repeats), or "hang", "endless",
    # "redirect"; paths not listed answer 200.
    plans: dict[str, Any] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)  # lets hanging requests go
    in_flight: int = 0
    hangups: int = 0  # held requests whose client went away before an answer
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def bodies(self, path: str) -> list[Any]:
        return [r.json() for r in self.at(path)]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                plan = receiver.plans.get(self.path)
                count = sum(1 for r in receiver.requests if r.path == self.path)
                receiver.in_flight += 1
                receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
            try:
                self._answer(plan, count)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1

        def _answer(self, plan: Any, count: int) -> None:
            if plan == "hang":
                if self._hang():
                    self._status(200)
            elif plan == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()  # no length: the body never ends until the client goes
                chunk = b"x" * 65536
                for _ in range(100_000):
                    self.wfile.write(chunk)
            elif plan == "redirect":
                self.send_response(307)
                self.send_header("Location", "/redirected")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif isinstance(plan, list):
                self._status(plan[min(count, len(plan)) - 1])
            else:
                self._status(200)

        def _hang(self) -> bool:
            """Holds the request until released (True) or until the client hangs up (False): so in_flight
            counts the connections the client really keeps open."""
            while not receiver.release.wait(0.02):
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    with receiver.lock:
                        receiver.hangups += 1
                    return False
            return True

        def _status(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    return Handler


@contextmanager
def receiver(make: Callable[[], Receiver] | None = None) -> Iterator[Receiver]:
    """A receiver listening on a free port of 127.0.0.1 for the block's duration."""
    state = make() if make else Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
