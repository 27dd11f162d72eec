"""Failed logins, limited per client IP and per username: a token bucket each, in this process's bounded memory
(FailureLimiter, a first gate that costs no I/O) and for the whole cluster in the store (SharedLimit)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ray.exceptions import RayError

from tork_ray.api.idempotency import call_id
from tork_ray.store.login_failures import Policy, digest, retry_after
from tork_ray.store.store import Store

log = logging.getLogger(__name__)

# Buckets kept at most: beyond, full ones are forgotten first, then the oldest (a flood of made-up usernames
# cannot grow the map; an attacker forging many names is still held by the bucket of their IP).
MAX_KEYS = 10_000


class FailureLimiter:
    """`limit` failures per `window` seconds per key; a key with no failure left is refused until one refills.
    Only failures spend: a caller who logs in correctly is never slowed by their own successes."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self.capacity = float(limit)
        self.rate = limit / window  # failures regained per second
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (failures left, last update)

    def _left(self, key: str, now: float) -> float:
        left, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, left + (now - last) * self.rate)

    def retry_after(self, *keys: str) -> int:
        """0 when every key may try now, else the whole seconds until all of them may."""
        now = self.clock()
        wait = max((1.0 - self._left(key, now)) / self.rate for key in keys) if keys else 0.0
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            left = self._left(key, now)
            self._buckets.pop(key, None)  # re-inserted last: the dict's order is the age order
            self._buckets[key] = (max(left - 1.0, 0.0), now)
        if len(self._buckets) > self.max_keys:
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if self._left(k, now) < self.capacity}
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)


class SharedLimit:
    """The same limits counted for the whole cluster: read from the store before a login (every API process sees
    every failure), spent through the coordinator (the store's one writer) after one. Survives a restart of any
    replica or of the coordinator, since nothing of it lives in their memory."""

    def __init__(self, store: Store, coordinator: Any, limit: int, window: float) -> None:
        self.store = store
        self.coordinator = coordinator
        self.policy = Policy(limit, window)

    def retry_after(self, *keys: str) -> int:
        """Blocking (one indexed read): call it off the event loop."""
        return retry_after(self.store.engine, [digest(key) for key in keys], self.policy)

    async def failed(self, *keys: str) -> None:
        digests = [digest(key) for key in keys]
        try:
            await self.coordinator.login_failed.remote(digests, self.policy.limit, self.policy.window, call_id())
        except RayError as exc:  # this process's own counts still hold; the 401 is not turned into a 500
            log.warning("could not count a failed login for the cluster: %s", type(exc).__name__)
