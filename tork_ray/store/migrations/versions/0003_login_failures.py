"""The failed-login counters shared by every API process (auth.failures.*; store/login_tables.py).

Created only where missing, as in 0002: a store made by create_all (stamped 0001 by store/migrate.py) has it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("login_failures"):
        return
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("left", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("full_at", sa.Float(), nullable=False),
        sa.Column("last_call", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_login_failures_full_at"), "login_failures", ["full_at"], unique=False)


def downgrade() -> None:
    op.drop_table("login_failures")  # its index goes with it
