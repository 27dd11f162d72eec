"""Wires webhooks into a coordinator: the outbox watches its writer, the sender drains the outbox."""

from __future__ import annotations

from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.redact import Redactor
from tork_ray.settings import Settings
from tork_ray.store.store import Store
from tork_ray.webhooks.outbox import Staging, WebhookOutbox
from tork_ray.webhooks.sender import WebhookSender


def install_webhooks(writer: StateWriter, store: Store, settings: Settings) -> WebhookSender:
    """Makes `writer` stage the calls each change fires; returns the sender, to start once recovered."""
    sender = WebhookSender(store, settings.webhooks)
    redactor = Redactor(patterns=settings.api.redact_patterns, enabled=settings.api.redact_enabled)
    staging = Staging(writer.stage, writer.job, writer.after_commit)
    writer.watch(WebhookOutbox(staging, redactor, settings.limits, sender.wake))
    return sender
