"""Batches a task's log output and ships it to the coordinator about once a second."""

from __future__ import annotations

import threading
from collections.abc import Callable

FLUSH_SECONDS = 1.0


class LogShipper:
    """Collects text from the runtime's threads; a background thread sends it on in parts."""

    def __init__(self, send: Callable[[str], object], flush_seconds: float = FLUSH_SECONDS) -> None:
        self._send = send
        self.last_sent: object = None  # what `send` returned for the latest part (a Ray ref: its delivery)
        self._flush_seconds = flush_seconds
        self._parts: list[str] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tork-log-shipper", daemon=True)

    def __enter__(self) -> LogShipper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.flush()

    def write(self, text: str) -> None:
        if text:
            with self._lock:
                self._parts.append(text)

    def flush(self) -> None:
        with self._lock:
            text, self._parts = "".join(self._parts), []
        if text:
            self.last_sent = self._send(text)

    def _loop(self) -> None:
        while not self._stopped.wait(self._flush_seconds):
            self.flush()
