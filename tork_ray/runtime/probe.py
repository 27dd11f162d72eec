"""A sidecar's readiness probe: HTTP GET every second until it answers 200, within the probe's timeout."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.waiting import Deadline
from tork_ray.spec.units import format_duration

INTERVAL_SECONDS = 1.0
# The probe targets a port published on this host's loopback: no proxy from the environment may intercept it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_ready(
    url: str,
    timeout_seconds: float,
    deadline: Deadline,
    still_running: Callable[[], str | None] = lambda: None,
) -> None:
    """Returns at the first 200. Fails with Tork's `probe timed out after <t>`, with the task's timeout,
    or at once when `still_running()` reports why the sidecar is gone."""
    end = time.monotonic() + timeout_seconds
    while True:
        started = time.monotonic()
        if _answers_200(url, min(INTERVAL_SECONDS, max(0.1, end - started))):
            return
        gone = still_running()
        if gone:
            raise RuntimeFailure(gone)
        if time.monotonic() >= end:
            raise RuntimeFailure(f"probe timed out after {format_duration(timeout_seconds)}")
        # Wait out the rest of the interval in short slices: a cancel or the task's timeout may come.
        while time.monotonic() < min(end, started + INTERVAL_SECONDS):
            deadline.check()
            time.sleep(deadline.remaining(min(0.2, max(0.0, started + INTERVAL_SECONDS - time.monotonic()))))
        deadline.check()


def _answers_200(url: str, timeout: float) -> bool:
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
