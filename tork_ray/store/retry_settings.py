"""datastore.retry.* (see outage.py for what they rule). Apart from outage.py, which needs SQLAlchemy: every
process loads the settings, and a task worker has no use for SQLAlchemy (~8 MB and 0.2 s of import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tork_ray.errors import BadRequest
from tork_ray.spec.units import parse_duration


@dataclass(frozen=True)
class StoreRetrySettings:
    """datastore.retry.*: how long the coordinator waits for a store that is out of reach before it gives up
    on a write (the write is then rolled back and refused with 503), and how often it tries meanwhile."""

    timeout: str = "60s"  # datastore.retry.timeout: the longest one write waits for the store
    delay: str = "100ms"  # datastore.retry.delay: the first wait; doubled after each failed try ...
    max_delay: str = "2s"  # datastore.retry.max.delay: ... up to this

    def checked(self) -> StoreRetrySettings:
        for dotted, value in (
            ("datastore.retry.timeout", self.timeout),
            ("datastore.retry.delay", self.delay),
            ("datastore.retry.max.delay", self.max_delay),
        ):
            try:
                seconds = parse_duration(value)
            except BadRequest as exc:
                raise BadRequest(f"setting {dotted}: {exc.message}") from None
            if seconds < 0:
                raise BadRequest(f"setting {dotted} must not be negative, got {value!r}")
        return self


def store_retry_settings(get: Callable[[str, Any], Any]) -> StoreRetrySettings:
    base = StoreRetrySettings()
    return StoreRetrySettings(
        timeout=str(get("datastore.retry.timeout", base.timeout)),
        delay=str(get("datastore.retry.delay", base.delay)),
        max_delay=str(get("datastore.retry.max.delay", get("datastore.retry.max_delay", base.max_delay))),
    ).checked()
