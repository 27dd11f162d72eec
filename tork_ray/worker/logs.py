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
        # Started by the first write: most trivial tasks print nothing, and a thread per task (start and
        # join) was a measurable part of what the engine adds to one.
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LogShipper:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        self.flush()

    def write(self, text: str) -> None:
        if text:
            with self._lock:
                self._parts.append(text)
                if self._thread is None and not self._stopped.is_set():
                    self._thread = threading.Thread(target=self._loop, name="tork-log-shipper", daemon=True)
                    self._thread.start()

    def flush(self) -> None:
        with self._lock:
            text, self._parts = "".join(self._parts), []
        if text:
            self.last_sent = self._send(text)

    def _loop(self) -> None:
        while not self._stopped.wait(self._flush_seconds):
            self.flush()
