"""datastore.encryption.key on a real SQLite (every byte of its files) and a real PostgreSQL (every row as text):
with a key no stored copy of a secret is in clear; clear rows stay readable; a wrong key is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.postgres import store_url
from tork_ray.domain.models import Job, Task
from tork_ray.domain.redact import REDACTED
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.crypto import SealError
from tork_ray.store.store import Store

CANARY = "CANARY-7f3a9b"
KEY = "correct horse battery staple"
TABLES = ("jobs", "tasks", "tasks_log_parts", "jobs_tags", "users")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path, "tork_crypt") as url:
        yield url


def secret_job() -> tuple[Job, Task]:
    """A job whose every secret-carrying field holds the canary, and its task, run and failed."""
    job = Job(
        name="deploy",
        description=f"nothing secret here but {CANARY}",  # searchable, so stored redacted, never sealed
        tags=["t"],
        state=JobState.FAILED,
        secrets={"token": CANARY},
        inputs={"db_password": CANARY},
        context={"secrets": {"token": CANARY}, "tasks": {"first": f"out {CANARY}"}},
        tasks=[{"name": "t", "image": "x", "registry": {"username": "u", "password": CANARY}, "run": "echo"}],
        webhooks=[{"url": "http://127.0.0.1:9/", "headers": {"X-Token": CANARY}}],
        result=f"out {CANARY}",
        error=f"task failed: {CANARY}",
    )
    task = Task(
        job_id=job.id,
        position=1,
        name=f"rendered {CANARY}",  # a task's name and queue are templates, rendered before they are stored
        queue=f"q-{CANARY}",
        state=TaskState.RUNNING,
        spec={"image": "x", "env": {"TOKEN": CANARY}, "registry": {"username": "u", "password": CANARY}},
        result=f"out {CANARY}",
    )
    return job, task


def clear_dump(url: str) -> str:
    """Everything the database holds, read without any key: every row of every table, as text."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                rows = [connection.execute(text(f"SELECT t::text FROM {table} t")).scalars().all() for table in TABLES]
            else:
                rows = [[repr(r) for r in connection.execute(text(f"SELECT * FROM {table}")).all()] for table in TABLES]
        return "\n".join(line for table in rows for line in table)
    finally:
        engine.dispose()


def file_bytes(url: str) -> bytes:
    """Every byte of a SQLite store's files, -wal and -shm included (read while the store is open, with no
    checkpoint, so what is only in the write-ahead log counts too)."""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_with_a_key_no_stored_copy_of_a_secret_is_in_clear(url: str) -> None:
    store = Store(url, encryption_key=KEY)
    job, task = secret_job()
    store.save(jobs=[job], tasks=[task])
    # Echoed to the log, cut in two by a flush, and once whole: redacted before it is stored.
    for part in (f"token is {CANARY[:5]}", f"{CANARY[5:]} ok\n", f"again {CANARY}\n", "tail CAN"):
        store.append_log(task.id, part)
    task.state, task.error = TaskState.FAILED, f"exit 3: {CANARY}"
    store.save(tasks=[task])  # the task ended: what was held back ("CAN") is stored now

    try:
        dump = clear_dump(url)
        assert CANARY not in dump and "deploy" in dump
        if url.startswith("sqlite"):
            raw = file_bytes(url)
            assert CANARY.encode() not in raw and CANARY.encode("utf-16-le") not in raw
            assert b"nothing secret here but [REDACTED]" in raw  # searchable fields stay searchable
        # Read back through the keyed store: all of it, as it was.
        again = Store(url, encryption_key=KEY)
        stored_job, stored_task = again.get_job(job.id), again.get_task(task.id)
        assert stored_job is not None and stored_task is not None
        assert stored_job.secrets == {"token": CANARY} and stored_job.context == job.context
        assert stored_job.webhooks == job.webhooks and stored_job.result == job.result
        assert stored_job.error == job.error and stored_task.error == task.error
        assert stored_task.spec == task.spec and stored_task.result == task.result
        assert (stored_task.name, stored_task.queue) == (task.name, task.queue)
        assert again.task_specs([job.id]) == {job.id: [task.spec]}
        assert [j.id for j in again.list_jobs(1, 10, "deploy")[0]] == [job.id]
        parts = sorted(again.task_log(task.id, 1, 10)[0], key=lambda p: p["number"])
        log = "".join(p["contents"] for p in parts)
        assert log == f"token is {REDACTED} ok\nagain {REDACTED}\ntail CAN"
        assert parts[0]["contents"] == "token is "  # no prefix of the secret either
        again.close()
    finally:
        store.close()


def test_clear_rows_are_read_with_a_key_and_a_wrong_key_is_a_clear_error(url: str) -> None:
    plain = Store(url)
    assert not plain.encrypted
    job, task = secret_job()
    plain.save(jobs=[job], tasks=[task])
    assert CANARY in clear_dump(url)  # no key: plaintext, as before (the engine warns at start)
    read = plain.get_job(job.id)
    assert read is not None and read.secrets == {"token": CANARY}
    plain.close()

    keyed = Store(url, encryption_key=KEY)
    old = keyed.get_job(job.id)  # written in clear, read with the key
    assert old is not None and old.secrets == {"token": CANARY}
    task.state = TaskState.COMPLETED
    keyed.save(jobs=[old], tasks=[task])  # written again: sealed now
    assert CANARY not in clear_dump(url)
    keyed.close()

    wrong = Store(url, encryption_key="not the key")
    with pytest.raises(SealError, match=r"datastore\.encryption\.key is not the key"):
        wrong.get_job(job.id)
    wrong.close()
    keyless = Store(url)
    with pytest.raises(SealError, match=r"set datastore\.encryption\.key"):
        keyless.get_task(task.id)
    keyless.close()


def test_a_store_made_before_sealing_takes_long_sealed_names(url: str) -> None:
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:  # a store made before migrations existed
        connection.execute(text("DROP TABLE alembic_version"))
        if engine.dialect.name == "postgresql":  # the schema as it was: SQLite never enforced the length
            connection.execute(text("ALTER TABLE tasks ALTER COLUMN name TYPE varchar(256)"))
    engine.dispose()
    store = Store(url, encryption_key=KEY)
    job, task = secret_job()
    task.name = "n" * 256
    store.save(jobs=[job], tasks=[task])
    stored = store.get_task(task.id)
    assert stored is not None and stored.name == task.name
    store.close()
