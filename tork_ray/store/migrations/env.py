"""Alembic's environment: the connection the store hands over (store/migrate.py), or, for `alembic revision
--autogenerate` by a developer, one to the store the TORK_* settings name."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tork_ray.store.migrate import configure_context, target_metadata


def _run(connection: Connection) -> None:
    configure_context(context, connection)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic command line (see the README's "Schema migrations")
    from tork_ray.settings import load_settings
    from tork_ray.store.store import make_engine

    target_metadata()
    engine = make_engine(load_settings().store_url)
    with engine.begin() as own:
        _run(own)
    engine.dispose()
