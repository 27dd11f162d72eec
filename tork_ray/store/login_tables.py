"""The failed-login counters every API process shares (auth.failures.*): one token bucket per client IP or username."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

LOGIN_FAILURES = "login_failures"


class LoginFailureRow(SQLModel, table=True):
    """A bucket with failures spent. `key` is a digest of "ip:<address>" or "user:<username>" (a username may be
    long, and names that never logged in need not sit in the store in clear). A row whose bucket is full again
    (`full_at` passed) is the same as no row: such rows are deleted as failures come in."""

    __tablename__ = LOGIN_FAILURES

    key: str = Field(primary_key=True, max_length=64)
    left: float  # failures left at `updated`
    updated: float  # Unix time of the last failure
    full_at: float = Field(index=True)  # Unix time when the bucket is full again
    # The coordinator call that spent last: a call Ray runs again after an actor restart spends once.
    last_call: str = Field(default="", max_length=64)
