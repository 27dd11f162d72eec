"""webhooks.* settings: signing secret, allow-list, and the sender's bounds (a frozen part of Settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tork_ray.errors import BadRequest
from tork_ray.spec.units import parse_duration
from tork_ray.webhooks.targets import TargetPolicy


@dataclass(frozen=True)
class WebhookSettings:
    # webhooks.secret: signs every call (X-Tork-Timestamp, X-Tork-Signature); "" sends unsigned, as Tork. Kept
    # out of repr, so settings printed into a log do not carry it.
    secret: str = field(default="", repr=False)
    # webhooks.allow: host names (`*.example.com` for sub-domains) and CIDR networks calls may go to; () = any.
    allow: tuple[str, ...] = ()
    concurrency: int = 8  # webhooks.concurrency: calls in flight at once
    batch: int = 100  # webhooks.batch: outbox rows read at a time
    timeout: str = "5s"  # webhooks.timeout: one attempt, response included (Tork: 5 s)
    attempts: int = 5  # webhooks.attempts: tries before giving up (Tork: 5)
    retry_delay: str = "2s"  # webhooks.retry.delay: the wait before try n+1 is n x this (Tork: 2, 4, 6, 8 s)

    @cached_property
    def policy(self) -> TargetPolicy:
        return TargetPolicy.parse(self.allow)

    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    def delay_seconds(self, attempt: int) -> float:
        """The wait after failed try number `attempt` (1-based)."""
        return parse_duration(self.retry_delay) * attempt

    def checked(self) -> WebhookSettings:
        self.policy  # noqa: B018 - parses the allow-list: a bad entry stops the engine at start
        for name, value in (("webhooks.timeout", self.timeout), ("webhooks.retry.delay", self.retry_delay)):
            try:
                parse_duration(value)
            except BadRequest as exc:
                raise BadRequest(f"setting {name}: {exc.message}") from None
        for name, number in (
            ("webhooks.concurrency", self.concurrency),
            ("webhooks.batch", self.batch),
            ("webhooks.attempts", self.attempts),
        ):
            if number < 1:
                raise BadRequest(f"setting {name} must be a positive integer, got {number}")
        return self


def webhook_settings(
    get: Callable[[str, Any], Any], as_int: Callable[[str, Any], int], as_list: Callable[[Any], tuple[str, ...]]
) -> WebhookSettings:
    """webhooks.* from the settings tree, read with settings.py's own helpers (`get(dotted, default)`)."""
    base = WebhookSettings()

    def number(dotted: str, default: int) -> int:
        return as_int(dotted, get(dotted, default))

    return WebhookSettings(
        secret=str(get("webhooks.secret", "")),
        allow=as_list(get("webhooks.allow", ())),
        concurrency=number("webhooks.concurrency", base.concurrency),
        batch=number("webhooks.batch", base.batch),
        timeout=str(get("webhooks.timeout", base.timeout)),
        attempts=number("webhooks.attempts", base.attempts),
        retry_delay=str(get("webhooks.retry.delay", base.retry_delay)),
    ).checked()
