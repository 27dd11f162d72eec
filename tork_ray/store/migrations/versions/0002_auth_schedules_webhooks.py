"""What came after the baseline release: roles, role membership and job permissions (auth), scheduled jobs
with their instances and permissions, the webhook outbox.

Each table is created only where it is missing: stores made by create_all between the baseline release and
migrations (stamped 0001 by store/migrate.py) may hold some of them already, with this very shape.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _roles() -> None:
    op.create_table(
        "roles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )


def _users_roles() -> None:
    op.create_table(
        "users_roles",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["roles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role_id"),
    )


def _jobs_perms() -> None:
    op.create_table(
        "jobs_perms",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "kind", "subject"),
    )
    op.create_index("ix_jobs_perms_subject", "jobs_perms", ["kind", "subject", "job_id"], unique=False)


def _scheduled_jobs() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cron", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fired", sa.BigInteger(), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_scheduled_jobs_created_at"), "scheduled_jobs", ["created_at"], unique=False)
    op.create_index(op.f("ix_scheduled_jobs_state"), "scheduled_jobs", ["state"], unique=False)


def _scheduled_jobs_instances() -> None:
    op.create_table(
        "scheduled_jobs_instances",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("scheduled_job_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index(
        op.f("ix_scheduled_jobs_instances_scheduled_job_id"),
        "scheduled_jobs_instances",
        ["scheduled_job_id"],
        unique=False,
    )


def _scheduled_jobs_perms() -> None:
    op.create_table(
        "scheduled_jobs_perms",
        sa.Column("scheduled_job_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["scheduled_job_id"], ["scheduled_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("scheduled_job_id", "kind", "name"),
    )
    op.create_index(op.f("ix_scheduled_jobs_perms_name"), "scheduled_jobs_perms", ["name"], unique=False)


def _webhook_outbox() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.String(length=48), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_webhook_outbox_done_at"), "webhook_outbox", ["done_at"], unique=False)
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["state", "next_at"], unique=False)
    op.create_index("ix_webhook_outbox_heads", "webhook_outbox", ["state", "stream", "id"], unique=False)


# In dependency order (a table before those whose foreign keys name it).
TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("roles", _roles),
    ("users_roles", _users_roles),
    ("jobs_perms", _jobs_perms),
    ("scheduled_jobs", _scheduled_jobs),
    ("scheduled_jobs_instances", _scheduled_jobs_instances),
    ("scheduled_jobs_perms", _scheduled_jobs_perms),
    ("webhook_outbox", _webhook_outbox),
)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    for name, _create in reversed(TABLES):
        op.drop_table(name)  # its indexes go with it
