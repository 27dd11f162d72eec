"""The one way tests wait: poll a check until it holds, or fail the test with what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition", every: float = 0.05) -> T:
    """Calls `check` until it returns a truthy value, which is returned. Past `timeout` seconds the test
    fails (AssertionError naming `what` and the last value): a wait never returns quietly."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
        time.sleep(every)
