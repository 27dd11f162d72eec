"""Wires webhooks into a coordinator: the outbox watches its writer, the sender drains the outbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job
from tork_ray.domain.redact import Redactor
from tork_ray.settings import Settings
from tork_ray.store.store import Store
from tork_ray.webhooks.outbox import Staging, WebhookOutbox
from tork_ray.webhooks.sender import WebhookSender


def install_webhooks(writer: StateWriter, store: Store, settings: Settings) -> WebhookSender:
    """Makes `writer` stage the calls each change fires; returns the sender, to start once recovered."""
    sender = WebhookSender(store, settings.webhooks)
    staging = Staging(writer.stage, writer.job, writer.after_commit)
    writer.watch(WebhookOutbox(staging, _redactor(settings), settings.limits, sender.wake))
    return sender


def creation_calls(settings: Settings) -> Callable[[Job], dict[str, list[Any]]]:
    """The outbox rows of a job's creation (its job.StateChange PENDING calls), for a job the store makes
    itself in its own transaction (a scheduled job's instance, store/schedules.fire) rather than through the
    writer. Runs on the I/O thread; the sender finds the rows at its next look (within a second)."""
    redactor = _redactor(settings)

    def rows(job: Job) -> dict[str, list[Any]]:
        staged: dict[str, list[Any]] = {}
        staging = Staging(lambda table, more: staged.setdefault(table, []).extend(more), {job.id: job}.get, _later)
        WebhookOutbox(staging, redactor, settings.limits, _later).job_changed(job, None, {})
        return staged

    return rows


def _later(*_: object) -> None:
    """No wake-up from the I/O thread: the sender polls (webhooks/sender.py IDLE_SECONDS)."""


def _redactor(settings: Settings) -> Redactor:
    return Redactor(patterns=settings.api.redact_patterns, enabled=settings.api.redact_enabled)
