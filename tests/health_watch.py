"""GET /health over and over from its own thread while a test sends something hostile: a hang detector (every
call must answer 200 within HANG_SECONDS) and the figure of the longest answer, never a speed assert."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

# A client timeout that only a hang reaches: /health itself gives the coordinator 5 s before it answers 503.
HANG_SECONDS = 10.0


@dataclass
class HealthWatch:
    url: str
    pause: float = 0.02  # between calls, so the watcher does not take a core of its own
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=HANG_SECONDS) as client:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    status = client.get("/health").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                else:
                    self.seconds.append(time.perf_counter() - began)
                    if status != 200:
                        self.failures.append(f"status {status}")
                self.stop.wait(self.pause)

    @property
    def calls(self) -> int:
        return len(self.seconds) + len(self.failures)

    def summary(self) -> str:
        longest = max(self.seconds, default=0.0)
        median = statistics.median(self.seconds or [0.0])
        return f"{self.calls} GET /health, longest {longest * 1000:.0f} ms, median {median * 1000:.0f} ms"

    def assert_answered(self) -> None:
        """Every call answered 200 before the hang timeout, and there was at least one."""
        assert self.calls > 0, "no /health call was made"
        assert self.failures == [], self.failures[:5]


@contextmanager
def watching_health(url: str, pause: float = 0.02) -> Iterator[HealthWatch]:
    watch = HealthWatch(url, pause)
    thread = threading.Thread(target=watch.run, name="health-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch.stop.set()
        thread.join(HANG_SECONDS + 5)
