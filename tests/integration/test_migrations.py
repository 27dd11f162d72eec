"""Schema migrations (store/migrate.py), on SQLite and PostgreSQL: from an empty database, from a store of the
last release without migrations (tests/data/release_ea0db2c.*.sql, made by that release's code), from stores
made by create_all since; the revisions' result is exactly the models' metadata."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, create_engine, text

from tests.postgres import store_url
from tork_ray.domain.models import Job, User, utcnow
from tork_ray.domain.schedules import ScheduledJob
from tork_ray.store.auth import Viewer
from tork_ray.store.migrate import MIGRATIONS, context_options, current_revision, target_metadata
from tork_ray.store.schedules import get_scheduled_job, insert_scheduled_job
from tork_ray.store.store import Store, make_engine
from tork_ray.store.webhook_outbox import outbox_rows

DATA = Path(__file__).parent.parent / "data"
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()
DONE, PENDING, FIRST_TASK = "a" * 32, "b" * 32, "1" * 32
ANN = User(id="c" * 32, name="Ann", username="ann", created_at=utcnow())


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path, "migrations") as url:
        yield url


def opened(url: str) -> Store:
    """The store started on `url` (migrations applied), with the time it took printed."""
    started = time.perf_counter()
    store = Store(url)
    took = time.perf_counter() - started
    print(f"\n{url.split(':')[0]}: store start {took:.3f}s, migrations {store.migration_seconds:.3f}s")
    return store


def revision(store: Store) -> str | None:
    with store.engine.connect() as connection:
        return current_revision(connection)


def schema_diff(store: Store, metadata: MetaData | None = None) -> list[Any]:
    """Alembic's autogenerate comparison of the database with the models (empty: nothing to migrate)."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=context_options(connection))
        return list(compare_metadata(context, metadata if metadata is not None else target_metadata()))


def load(url: str, script: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.connection.driver_connection.executescript(script)  # type: ignore[union-attr]
            else:
                connection.exec_driver_sql(script)
    finally:
        engine.dispose()


def test_empty_database_gets_head_and_exactly_the_models(empty_url: str) -> None:
    store = opened(empty_url)
    try:
        assert revision(store) == HEAD
        assert schema_diff(store) == []
        assert store.get_user("guest") is not None
        assert store.auth.create_role("ops", "Operators") is not None
    finally:
        store.close()


def test_the_comparison_sees_a_model_change_without_a_migration(empty_url: str) -> None:
    # What makes the test above a guard: a column in the models that no revision made is reported.
    store = opened(empty_url)
    try:
        changed = MetaData()
        for table in target_metadata().sorted_tables:
            table.to_metadata(changed)
        changed.tables["jobs"].append_column(Column("priority", Integer, nullable=True))
        diff = schema_diff(store, changed)
        assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "jobs", "priority")]
    finally:
        store.close()


def test_store_of_the_previous_release_is_upgraded_with_its_rows(empty_url: str) -> None:
    dialect = "postgres" if empty_url.startswith("postgresql") else "sqlite"
    load(empty_url, (DATA / f"release_ea0db2c.{dialect}.sql").read_text())
    store = opened(empty_url)
    try:
        assert revision(store) == HEAD
        assert schema_diff(store) == []
        _release_rows_are_there(store)
        _new_tables_work(store)
    finally:
        store.close()
    again = opened(empty_url)  # a second start finds nothing to do and changes nothing
    try:
        assert revision(again) == HEAD
        _release_rows_are_there(again)
    finally:
        again.close()


def _release_rows_are_there(store: Store) -> None:
    done = store.get_job(DONE)
    assert done is not None
    assert (done.name, done.state.value, done.result, sorted(done.tags)) == (
        "nightly backup",
        "COMPLETED",
        "all copied",
        ["nightly", "ops"],
    )
    assert [(t.name, t.result) for t in store.job_tasks(DONE)] == [("step 1", "out 1"), ("step 2", "out 2")]
    parts, total = store.task_log(FIRST_TASK, 1, 10)
    assert total == 1 and parts[0]["contents"] == "copied 42 files\n"
    # The release's search indexes still answer, and keep up with new rows.
    assert [j.id for j in store.list_jobs(1, 10, "nightly copies")[0]] == [DONE]
    assert [j.id for j in store.list_jobs(1, 10, "tag:reports")[0]] == [PENDING]
    assert store.task_log(FIRST_TASK, 1, 10, "files")[1] == 1


def _new_tables_work(store: Store) -> None:
    # Auth: a role, a member, a job visible to that role only (its permission rows).
    store.auth.create_role("ops", "Operators")
    store.create_user(ANN, "hash")
    store.auth.set_member("ann", "ops", True)
    private = Job(name="private backup", permissions=[{"role": "ops"}], created_by=ANN)
    store.save(jobs=[private])
    ann, bob = Viewer("ann", frozenset({"ops"})), Viewer("bob", frozenset())
    assert private.id in [j.id for j in store.list_jobs(1, 10, viewer=ann)[0]]
    assert private.id not in [j.id for j in store.list_jobs(1, 10, viewer=bob)[0]]
    assert DONE in [j.id for j in store.list_jobs(1, 10, viewer=bob)[0]]  # the release's jobs: no permissions
    # Scheduled jobs.
    scheduled = ScheduledJob(name="hourly", cron="0 * * * *", tasks=[{"name": "t", "run": "true"}])
    insert_scheduled_job(store, scheduled)
    found = get_scheduled_job(store, scheduled.id)
    assert found is not None and found.name == "hourly"
    # The webhook outbox, written with a state change as the coordinator writes it.
    now = utcnow()
    call = {
        "delivery": "d1",
        "stream": f"{DONE}:0",
        "job_id": DONE,
        "event": "job.StateChange",
        "url": "http://example.test/hook",
        "headers": {},
        "body": "{}",
        "state": "pending",
        "attempts": 0,
        "next_at": now,
        "created_at": now,
    }
    store.save(extra={"webhook_outbox": [call]})
    assert [row.delivery for row in outbox_rows(store, DONE)] == ["d1"]


@pytest.mark.parametrize("made_with", ["baseline tables and auth", "every table"])
def test_store_made_by_create_all_before_migrations_is_recognised(empty_url: str, made_with: str) -> None:
    # Stores made between the release and migrations (no alembic_version): stamped 0001, then upgraded
    # without tripping over the tables they already have.
    metadata = target_metadata()
    wanted = None
    if made_with != "every table":
        wanted = [t for t in metadata.sorted_tables if not t.name.startswith(("scheduled_", "webhook_"))]
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        metadata.create_all(connection, tables=wanted)
        connection.execute(
            text("INSERT INTO roles (id, slug, name, created_at) VALUES ('r1', 'ops', 'Operators', :now)"),
            {"now": utcnow()},
        )
    engine.dispose()
    store = opened(empty_url)
    try:
        assert revision(store) == HEAD
        assert schema_diff(store) == []
        assert store.auth.create_role("ops", "again") is None  # the role made before is still there
        insert_scheduled_job(store, ScheduledJob(name="s", cron="* * * * *"))
    finally:
        store.close()


def test_stores_opened_at_once_on_a_new_database_migrate_it_once(empty_url: str) -> None:
    # The set-up lock (an advisory lock on PostgreSQL, SQLite's write lock): four openers at once (as a
    # coordinator and API replicas starting together, each with its own connections) all succeed.
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(Store(empty_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(stores) == 4
        assert {revision(store) for store in stores} == {HEAD}
        with stores[0].engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        for store in stores:
            store.close()
