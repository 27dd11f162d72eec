"""Makes tests/data/release_ea0db2c.{sqlite,postgres}.sql: a store of the last release without migrations
(commit ea0db2c), schema and rows, as that release's own code wrote them. Run with that release's package
first on the path (it imports `tork_ray` from there), then the dumps are what tests/integration/
test_migrations.py loads before opening the store with today's code:

    mkdir /tmp/ea0db2c && git archive ea0db2c tork_ray | tar -x -C /tmp/ea0db2c
    PYTHONPATH=/tmp/ea0db2c:. .venv/bin/python tests/data/make_release_dumps.py
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.postgres import fresh_database
from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.store import Store

HERE = Path(__file__).parent
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def fill(store: Store) -> None:
    """One finished job with two tasks and a log, one pending tagged job: what the tests look for after."""
    done = Job(
        id="a" * 32,
        name="nightly backup",
        description="copies the files",
        tags=["ops", "nightly"],
        state=JobState.COMPLETED,
        created_at=WHEN,
        completed_at=WHEN,
        result="all copied",
        task_count=2,
        position=2,
        tasks=[{"name": "copy", "image": "alpine", "run": "cp -r /a /b"}],
    )
    tasks = [
        Task(
            id=f"{n}" * 32,
            job_id=done.id,
            position=n,
            name=f"step {n}",
            state=TaskState.COMPLETED,
            created_at=WHEN,
            completed_at=WHEN,
            result=f"out {n}",
            spec={"image": "alpine", "run": "true"},
        )
        for n in (1, 2)
    ]
    pending = Job(id="b" * 32, name="weekly report", tags=["reports"], created_at=WHEN)
    store.save(jobs=[done, pending], tasks=tasks)
    store.append_log(tasks[0].id, "copied 42 files\n")


def sqlite_dump() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tork.db"
        store = Store(f"sqlite:///{path}")
        fill(store)
        store.close()
        connection = sqlite3.connect(path)
        try:
            return _sqlite_statements(connection)
        finally:
            connection.close()


def _sqlite_statements(connection: sqlite3.Connection) -> str:
    """The schema as sqlite_master holds it (tables, FTS5 tables, indexes, triggers: FTS5's own shadow tables
    are made by its CREATE VIRTUAL TABLE), then the rows of the plain tables: inserting them fires the
    release's triggers, which fill its search index as the release did (iterdump's copy of FTS5 internals
    cannot be loaded back)."""
    schema = connection.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND NOT (type = 'table' AND name GLOB '*_fts_*') "
        "ORDER BY "
        "CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name"
    ).fetchall()
    plain = [
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' "
            "AND name NOT GLOB '*_fts*' ORDER BY name"
        )
    ]
    rows = [line for line in connection.iterdump() if any(line.startswith(f'INSERT INTO "{t}" ') for t in plain)]
    return "".join(f"{statement};\n" for (statement,) in schema) + "".join(f"{row}\n" for row in rows)


def postgres_dump() -> str:
    with fresh_database("release_dump") as url:
        store = Store(url)
        fill(store)
        store.close()
        parts = make_url(url)
        env = {"PGPASSWORD": parts.password or "", "PATH": "/usr/bin:/bin"}
        command = [
            "pg_dump",
            "--inserts",
            "--no-owner",
            "--no-privileges",
            "-h",
            str(parts.host),
            "-p",
            str(parts.port),
            "-U",
            str(parts.username),
            str(parts.database),
        ]
        dump = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        # pg_dump empties search_path for its own session; the loader's session must keep the default one.
        # Statements only: pg_dump's psql meta-commands (\\restrict) and its emptied search_path are dropped, so
        # one plain execute() loads it.
        lines = dump.splitlines(keepends=True)
        return "".join(
            line for line in lines if not line.startswith("\\") and "set_config('search_path', ''" not in line
        )


if __name__ == "__main__":
    (HERE / "release_ea0db2c.sqlite.sql").write_text(sqlite_dump())
    (HERE / "release_ea0db2c.postgres.sql").write_text(postgres_dump())
