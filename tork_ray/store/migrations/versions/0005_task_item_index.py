"""tasks.item_index: an each child's index in its list, and an index to find an each's next CREATED child by it.

The coordinator no longer holds the children of an each past its window (coordinator.each.window): they are
stored CREATED and released in list order from the table. The order was only in the spec, which is sealed.
Rows stored before this revision have none (NULL): their each, if still running, reads them all at once and
releases them in the order of the index in their spec (store.py, `created_children`).

Added only where missing: a store made by create_all (stamped 0001 by store/migrate.py) may have it already.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_tasks_parent_state_item"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "item_index" not in {column["name"] for column in inspector.get_columns("tasks")}:
        op.add_column("tasks", sa.Column("item_index", sa.Integer(), nullable=True))
    if INDEX not in {index["name"] for index in inspector.get_indexes("tasks")}:
        op.create_index(INDEX, "tasks", ["parent_id", "state", "item_index"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("item_index")
