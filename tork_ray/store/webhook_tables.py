"""The webhook outbox: calls to make, written in the same transaction as the state change that causes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel

from tork_ray.store.crypto import SealedJSON, SealedText

OUTBOX = "webhook_outbox"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookOutboxRow(SQLModel, table=True):
    """One call to one webhook. Rows of one stream (a job's webhook) go out one at a time in id order, so a
    receiver sees a job's events in the order they happened. Only the sender changes a row after its insert."""

    __tablename__ = OUTBOX
    __table_args__ = (
        Index("ix_webhook_outbox_due", "state", "next_at"),
        Index("ix_webhook_outbox_heads", "state", "stream", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery: str = Field(max_length=32)  # sent as X-Tork-Delivery: a receiver can drop a repeated call
    stream: str = Field(max_length=48)  # "<job id>:<webhook index>"
    job_id: str = Field(max_length=32)
    event: str = Field(max_length=32)
    # A sub-job's URL and any header are rendered from templates: they may hold a secret, so they are sealed.
    url: str = Field(sa_column=Column(SealedText("webhook_outbox.url"), nullable=False))
    headers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(SealedJSON("webhook_outbox.headers"), nullable=False)
    )
    body: str = Field(sa_column=Column(SealedText("webhook_outbox.body"), nullable=False))
    state: str = Field(default=PENDING, max_length=16)
    attempts: int = 0
    next_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), index=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text))  # a status or an error's kind, no secret
