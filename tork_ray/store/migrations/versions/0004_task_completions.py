"""tasks.completions: the count of a parallel's or each's children that came home, out of the sealed spec.

Up to 0003 the count lived in the parent's spec (`parallel.completions`, `each.completions`), so every child's
completion rewrote the whole spec, every child's definition in it. Rows stored so keep their count there: the
store reads it as the count while the column is behind it (store.py, `_task`), so a parallel or each left
RUNNING by the previous release carries on from where it was; its spec is sealed, which a revision cannot open.

Added only where missing: a store made by create_all (stamped 0001 by store/migrate.py) may have it already.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "completions" in {column["name"] for column in sa.inspect(op.get_bind()).get_columns("tasks")}:
        return
    op.add_column("tasks", sa.Column("completions", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("completions")
