"""A throw-away database on the test PostgreSQL server (`make test` starts it): created for one test, dropped
after it. A missing server fails in CI and skips elsewhere, as every service of the suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import require

POSTGRES_URL = os.environ.get("TORK_TEST_POSTGRES_URL", "postgresql+psycopg://tork:tork@127.0.0.1:55432/tork_test")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database named `<prefix>_<random>`; dropped (connections and all) afterwards."""
    admin_url = make_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        admin = None
    require(admin is not None, f"a PostgreSQL server at {admin_url.render_as_string(hide_password=True)}")
    assert admin is not None
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def store_url(kind: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    """A fresh store's URL of `kind`: "sqlite" (a file in `tmp_path`) or "postgres" (fresh_database(prefix))."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/tork.db"
        return
    with fresh_database(prefix) as url:
        yield url
