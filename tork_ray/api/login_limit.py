"""Failed logins, limited per client IP and per username: a token bucket each, in bounded memory."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

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
