"""The coordinator's readiness: recovery from the store, tried again with a backoff until it succeeds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tork_ray.errors import Unavailable

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0


class Readiness:
    """Runs `recover` until it succeeds (a failure is logged and tried again, 0.5 s, 1 s, ... up to 30 s
    apart), so a store that was down, or a row an operator repairs, does not poison the coordinator for ever.
    Until then every call that needs the coordinator's state is refused with the reason (503), and /health says
    so, instead of each call re-raising the first failure while /health said UP."""

    def __init__(self, recover: Callable[[], Awaitable[None]]) -> None:
        self._recover = recover
        self.reason: str | None = "recovering from the store"
        self.failures = 0
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._task is None:
            self._task = (loop or asyncio.get_running_loop()).create_task(self._run())

    async def wait(self) -> None:
        """Returns once recovered; raises Unavailable (with the reason) while the last attempt failed. Only the
        first attempt is waited for: later callers get the answer at once, not a hang."""
        self.start()
        await self._first_attempt.wait()
        if self.reason is not None:
            raise Unavailable(f"coordinator is not ready: {self.reason}")

    def report(self) -> dict[str, Any]:
        return {"ready": self.reason is None, "reason": self.reason, "failures": self.failures}

    async def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await self._recover()
            except Exception as exc:
                self.failures += 1
                text = str(exc).splitlines()[0] if str(exc) else ""
                self.reason = f"recovery failed: {type(exc).__name__}: {text}"[:500]
                log.exception("coordinator recovery failed (attempt %d); next try in %.1fs", self.failures, delay)
                self._first_attempt.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            self.reason = None
            self._first_attempt.set()
            return
