"""Versioned schema migrations (Alembic): every store start brings the schema to the newest revision.

The revisions live in store/migrations/versions/, shipped with the package. The caller (Store's bootstrap)
holds the set-up lock and the transaction: on PostgreSQL an advisory lock, on SQLite the database's write lock
(BEGIN IMMEDIATE), so two processes opening one store at once migrate it once, and a failed migration leaves
the schema as it was (both databases have transactional DDL).

A store made before migrations existed (by `create_all`, no alembic_version table) is recognised: it is
first given the shape of revision 0001 (the last release's schema) where an older version left it short, then
stamped 0001, then upgraded like any other; revision 0002 creates only the tables such a store lacks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema of the last release made without migrations (commit ea0db2c)
# The newest revision. A store already there is opened without Alembic, which costs every process that opens a
# store (the API, the coordinator, each worker of a cluster's head) a quarter of a second of imports and script
# loading at each start. tests/unit/test_migrate_head.py checks it names the scripts' head.
HEAD = "0005"


def target_metadata() -> MetaData:
    """SQLModel's metadata with every table of the store in it (each module adds its own tables on import)."""
    from sqlmodel import SQLModel

    from tork_ray.store import auth_tables, login_tables, schedule_tables, tables, webhook_tables  # noqa: F401

    return SQLModel.metadata


def _render_item(type_: str, obj: Any, _context: Any) -> str | bool:
    # Revisions must not import the package's column types (sealed columns, SQLModel's AutoString): a later
    # change to those would rewrite history. They are written as the plain type stored underneath.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


# Made by the search dialects (search.py), outside the models: derived indexes a comparison must not call extra.
_SEARCH_TABLES = ("jobs_fts", "log_fts")  # SQLite's FTS5 tables, and their shadow tables (jobs_fts_data, ...)
_SEARCH_INDEXES = frozenset({"ix_jobs_ts", "ix_log_parts_ts"})  # PostgreSQL's GIN indexes of the ts columns


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if not reflected or compare_to is not None or name is None:
        return True
    if type_ == "table":
        return not name.startswith(_SEARCH_TABLES)
    if type_ == "column":
        return name != "ts"  # PostgreSQL's generated tsvector columns of jobs and tasks_log_parts
    return not (type_ == "index" and name in _SEARCH_INDEXES)


def configure_context(context: Any, connection: Connection) -> None:
    """What env.py configures Alembic with (also the comparison of tests/integration/test_migrations.py)."""
    context.configure(connection=connection, **context_options(connection))


def context_options(connection: Connection) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata(),
        "compare_type": True,
        "render_item": _render_item,
        "include_object": _include_object,
        # SQLite alters a table by copying it: future revisions' alter_column/drop_column then work there too.
        "render_as_batch": connection.dialect.name == "sqlite",
    }


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]


def upgrade(connection: Connection) -> float:
    """Brings the schema on `connection` to head, inside the caller's transaction; the seconds it took."""
    started = time.perf_counter()
    if _at_head(connection):
        return time.perf_counter() - started
    from alembic import command

    config = _config(connection)
    if current_revision(connection) is None and inspect(connection).has_table("jobs"):
        _shape_baseline(connection)
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return time.perf_counter() - started


def _shape_baseline(connection: Connection) -> None:
    """Stores older than the baseline release had varchar(256) task names and queues (too short for a sealed
    value on PostgreSQL; SQLite does not enforce lengths) and no tasks.redelivered: fix both, once."""
    columns = {c["name"]: c for c in inspect(connection).get_columns("tasks")}
    if "redelivered" not in columns:
        connection.execute(text("ALTER TABLE tasks ADD COLUMN redelivered INTEGER NOT NULL DEFAULT 0"))
    if connection.dialect.name != "postgresql":
        return
    for name in ("name", "queue"):
        if getattr(columns[name]["type"], "length", None) is not None:
            connection.execute(text(f"ALTER TABLE tasks ALTER COLUMN {name} TYPE text"))
