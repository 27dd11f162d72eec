"""The Store: jobs, tasks and log parts in SQL, mapped to and from the domain models."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, create_engine, delete, select

from tork_ray.domain.models import COUNTED, GUEST, ITEM_KEY, Job, Task, User, new_id, utcnow
from tork_ray.domain.redact import Redactor
from tork_ray.domain.states import TASK_TERMINAL, JobState, TaskState
from tork_ray.settings import Settings
from tork_ray.spec.units import parse_duration
from tork_ray.store import logs, migrate
from tork_ray.store.auth import AuthStore, Viewer, perm_rows, user_of, visible_clause
from tork_ray.store.auth_tables import JobPermRow
from tork_ray.store.crypto import bind_cipher, cipher_for
from tork_ray.store.logguard import JobHiddenCache, LogGuards
from tork_ray.store.outage import no_retry, transaction
from tork_ray.store.schedule_tables import ScheduledJobRow  # noqa: F401  (its tables join the metadata)
from tork_ray.store.search import parse_query, search_dialect
from tork_ray.store.stats import TransitionCounters
from tork_ray.store.tables import JobRow, JobTagRow, RequestRow, TaskLogPartRow, TaskRow, UserRow
from tork_ray.store.webhook_tables import WebhookOutboxRow as WebhookOutboxRow  # its table, made at bootstrap
from tork_ray.store.writes import JOB_COLUMNS, TASK_COLUMNS, RowWriter, job_values, tag_values, task_values

log = logging.getLogger(__name__)

# Tasks of a stream (Store.save) made, converted and inserted at a time: an each's stored children are never
# all in memory at once, and one statement per thousand rows costs little more than one for all of them.
STREAM_CHUNK = 1000


def batched(items: Iterable[Task], size: int) -> Iterator[list[Task]]:
    """`items` in lists of `size` (itertools.batched, from Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# Serialises schema set-up between processes that open the same PostgreSQL store at once.
_BOOTSTRAP_LOCK = 7_262_011


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def make_engine(url: str, busy_timeout: float = 30.0) -> Engine:
    """An engine for `url`; SQLite gets WAL (API readers never block the writer) and a busy timeout (seconds)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def open_store(settings: Settings) -> Store:
    """The store the settings describe: its URL, its encryption key, the redaction patterns its logs obey."""
    return Store(
        settings.store_url,
        busy_timeout=parse_duration(settings.datastore.sqlite_busy_timeout),
        encryption_key=settings.datastore.encryption_key,
        redactor=Redactor(patterns=settings.api.redact_patterns),
    )


class Store:
    """All SQL of tork_ray. Writers: the coordinator only. Readers: the coordinator and the API.

    With `encryption_key`, every column that can carry a secret is sealed (crypto.py); log parts are redacted
    before they are stored whatever the key (logguard.py), by `redactor`'s patterns (always on: a stored part
    is a way out that cannot be taken back, and the API would hide those values anyway).
    """

    def __init__(
        self, url: str, *, encryption_key: str = "", redactor: Redactor | None = None, busy_timeout: float = 30.0
    ) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout)
        self.encrypted = bool(encryption_key)
        bind_cipher(self.engine, cipher_for(encryption_key))
        self.search = search_dialect(self.engine.dialect.name)
        # Only the coordinator's instance writes, so only its counters move (see stats.py).
        self.counters = TransitionCounters()
        self._writer = RowWriter(self.engine.dialect.name)
        self._redactor = Redactor(patterns=redactor.patterns) if redactor else Redactor()
        self._log_guards = LogGuards(self._log_hidden_values)
        self._job_hidden = JobHiddenCache(self._job_hidden_values)
        self.auth = AuthStore(self.engine)  # roles, membership, logins (store/auth.py)
        # How the writes of log parts wait out an outage: once by default; the coordinator sets its StoreRetry.
        self.retry_writes: Callable[[Callable[[], Any], str], Any] = no_retry
        self.migration_seconds = 0.0  # what the schema migrations took at this start (migrate.py)
        self._bootstrap()

    def _bootstrap(self) -> None:
        """Schema at the newest revision (migrate.py), search indexes and the built-in guest user: idempotent,
        in one transaction, under a lock that serialises processes opening the same store at once."""
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK})
            else:
                # pysqlite starts no transaction before DDL by itself: take the write lock now, so the whole
                # set-up is one transaction and a second process waits (busy timeout) instead of racing.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            perms_were_there = inspect(connection).has_table(JobPermRow.__tablename__)
            self.migration_seconds = migrate.upgrade(connection)
            self.search.install(connection)
            if connection.execute(select(UserRow.id).where(UserRow.username == GUEST.username)).first() is None:
                connection.execute(
                    insert(UserRow).values(
                        id=GUEST.id,
                        name=GUEST.name,
                        username=GUEST.username,
                        password_hash="",
                        created_at=utcnow(),
                        disabled=True,
                    )
                )
            AuthStore.bootstrap(connection, perms_were_there)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def ping(self) -> None:
        """Raises unless the jobs table answers (a plain connection: health is called often, keep it cheap)."""
        with self.engine.connect() as connection:
            connection.execute(select(JobRow.id).where(col(JobRow.id) == "").limit(1)).all()

    # --- writes (coordinator) -------------------------------------------------------------------------

    def expect_new(self, jobs: Iterable[Job] = (), tasks: Iterable[Task] = ()) -> None:
        """Jobs and tasks just created, not stored yet: their first save need not look for an older row."""
        self._writer.expect_new("jobs", (job.id for job in jobs))
        self._writer.expect_new("tasks", (task.id for task in tasks))

    def save(
        self,
        jobs: Iterable[Job] = (),
        tasks: Iterable[Task] = (),
        extra: Mapping[str, list[Any]] | None = None,
        completions: Mapping[str, int] | None = None,
        narrow: AbstractSet[str] = frozenset(),
        streams: Iterable[Callable[[], Iterable[Task]]] = (),
        cancel_created: AbstractSet[str] = frozenset(),
    ) -> None:
        """Upserts jobs and tasks, sets `completions` (task id -> children counted home) of tasks not saved
        whole, and inserts `extra` rows (table name -> rows), in one transaction: a state change is stored
        whole or not at all. Jobs whose id is in `narrow` changed only in their progress columns
        (writes.JOB_PROGRESS_COLUMNS) since their last save: their document is not written again.

        `streams` make new tasks that are stored and not kept (an each's children past the coordinator's
        window), inserted STREAM_CHUNK at a time so that no more of them than that are in memory at once; each
        is called anew if the transaction is tried again. The CREATED tasks of the jobs in `cancel_created` (the
        same children, of a job that ended) are CANCELLED in bulk, after the streams."""
        tasks = list(tasks)
        made: list[Any] = []
        cancelled: list[int] = []
        # A commit cut off by an outage may turn out stored: then what follows it is done by the retry (outage.py).
        with transaction(self.engine, lambda: self._saved(made, tasks, cancelled)) as connection:
            made += self._writer.save(connection, list(jobs), tasks, narrow)
            self._writer.save_completions(connection, completions or {})
            for table, rows in (extra or {}).items():
                if rows:
                    connection.execute(insert(SQLModel.metadata.tables[table]), rows)
            for stream in streams:
                for chunk in batched(stream(), STREAM_CHUNK):
                    connection.execute(insert(TaskRow.__table__), [task_values(task) for task in chunk])  # type: ignore[attr-defined]
            if cancel_created:
                cancelled.append(self._writer.cancel_created(connection, cancel_created))
        self._saved(made, tasks, cancelled)

    def created_children(self, parent_id: str, after: int, limit: int) -> list[Task]:
        """The CREATED children of `parent_id` (an each's children waiting for its window) whose item index is
        past `after`, the first `limit` in list order: one range of the index on (parent_id, state,
        item_index). Rows stored before item_index existed have none (all the children of one each alike):
        those come all at once, in list order (the coordinator of then held them all anyway)."""
        query = select(TaskRow).where(TaskRow.parent_id == parent_id, TaskRow.state == TaskState.CREATED.value)
        with self._session() as session:
            rows = session.exec(
                query.where(col(TaskRow.item_index) > after).order_by(col(TaskRow.item_index)).limit(limit)
            ).all()
            if not rows and after < 0:
                rows = session.exec(query.where(col(TaskRow.item_index).is_(None))).all()
                return sorted(map(_task, rows), key=lambda task: int(task.spec.get(ITEM_KEY, {}).get("index", 0)))
            return [_task(row) for row in rows]

    def _saved(self, changes: list[Any], tasks: list[Task], cancelled: list[int]) -> None:
        # Only once committed: a failed commit must leave the writer's memory of stored states as it was.
        self._writer.remember(changes)
        for _ in range(sum(cancelled)):
            self.counters.task_changed(TaskState.CREATED.value, TaskState.CANCELLED.value, None, None)
        self._job_hidden.invalidate(change.record.id for change in changes if isinstance(change.record, Job))
        for task in tasks:
            if task.state in TASK_TERMINAL and (rest := self._log_guards.finish(task.id)):
                try:  # the change is stored: a lost tail of its log must not make the caller think otherwise
                    self.retry_writes(partial(self._store_part, task.id, rest), "a log part")
                except Exception:
                    log.exception("the last part of the log of task %s could not be stored", task.id)
        for change in changes:
            if change.old == change.new:
                continue
            if isinstance(change.record, Job):
                self.counters.job_changed(change.old, change.new)
            else:
                task = change.record
                ended = task.completed_at or task.failed_at or (utcnow() if change.old else None)
                self.counters.task_changed(change.old, change.new, task.started_at, ended)

    def import_jobs(self, jobs: Iterable[Job], batch: int = 5000) -> int:
        """Bulk insert of new jobs (no tasks): for benchmarks and imports, far faster than `save`."""
        count = 0
        pending: list[Job] = []
        for job in jobs:
            pending.append(job)
            if len(pending) >= batch:
                count += self._insert_jobs(pending)
                pending = []
        return count + (self._insert_jobs(pending) if pending else 0)

    def _insert_jobs(self, jobs: list[Job]) -> int:
        with self._session() as session:
            session.execute(insert(JobRow), [job_values(job) for job in jobs])
            tags = tag_values(jobs)
            if tags:
                session.execute(insert(JobTagRow), tags)
            if perms := perm_rows(jobs):
                session.execute(insert(JobPermRow), perms)
            session.commit()
        return len(jobs)

    def append_log(self, task_id: str, contents: str) -> int:
        """Stores a part of a task's log, redacted (see logguard.py); its number, or 0 when all of it is held
        back for now (it could be the start of a secret)."""
        # Each step is tried again alone while the store is out of reach: feed() reads (on a task's first part)
        # before it changes anything, and a part stored twice is worse than a part that waited.
        ready = self.retry_writes(partial(self._log_guards.feed, task_id, contents), "a log part")
        return self.retry_writes(partial(self._store_part, task_id, ready), "a log part") if ready else 0

    def _log_hidden_values(self, task_id: str) -> tuple[list[str], bool] | None:
        task = self.get_task(task_id)
        from_job = self._job_hidden.get(task.job_id) if task is not None else None
        if task is None or from_job is None:
            return None
        # PartRedactor orders them (longest first) and drops repeats.
        return [*from_job, *self._redactor.hidden_values(task.spec)], task.state in TASK_TERMINAL

    def _job_hidden_values(self, job_id: str) -> list[str] | None:
        """The job's part of what its tasks' logs hide: its secrets, the values under secret-looking keys of
        its document (definition and context), and the parent's secrets rendered into it (`hidden`)."""
        job = self.get_job(job_id)
        if job is None:
            return None
        return [*self._redactor.hidden_values(job.model_dump(mode="json", by_alias=True)), *job.hidden]

    def _store_part(self, task_id: str, contents: str) -> int:
        with self._session() as session:
            last = session.exec(select(func.max(TaskLogPartRow.number)).where(TaskLogPartRow.task_id == task_id)).one()
            number = (last or 0) + 1
            session.add(
                TaskLogPartRow(id=new_id(), task_id=task_id, number=number, contents=contents, created_at=utcnow())
            )
            session.commit()
            return number

    def delete_jobs(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        with self._session() as session:
            task_ids = select(TaskRow.id).where(col(TaskRow.job_id).in_(job_ids))
            session.exec(delete(TaskLogPartRow).where(col(TaskLogPartRow.task_id).in_(task_ids)))
            session.exec(delete(TaskRow).where(col(TaskRow.job_id).in_(job_ids)))
            session.exec(delete(JobTagRow).where(col(JobTagRow.job_id).in_(job_ids)))
            session.exec(delete(JobPermRow).where(col(JobPermRow.job_id).in_(job_ids)))
            session.exec(delete(JobRow).where(col(JobRow.id).in_(job_ids)))
            session.commit()
        self._writer.forget("jobs", job_ids)
        self._job_hidden.invalidate(job_ids)

    # --- reads ----------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        with self._session() as session:
            row = session.get(JobRow, job_id)
            return _job(row) if row else None

    def get_task(self, task_id: str) -> Task | None:
        with self._session() as session:
            row = session.get(TaskRow, task_id)
            return _task(row) if row else None

    def job_tasks(self, job_id: str, states: Iterable[TaskState] | None = None) -> list[Task]:
        """Every task instance of a job (of `states` only, when given), ordered as Tork's `execution`:
        position, then start."""
        query = select(TaskRow).where(TaskRow.job_id == job_id)
        if states is not None:
            query = query.where(col(TaskRow.state).in_([state.value for state in states]))
        with self._session() as session:
            rows = session.exec(query.order_by(col(TaskRow.position), col(TaskRow.created_at))).all()
            return [_task(row) for row in rows]

    def task_specs(self, job_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The evaluated definitions of every task of the given jobs (what redaction harvests secrets from)."""
        ids = list(job_ids)
        if not ids:
            return {}
        specs: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id in ids}
        with self._session() as session:
            for job_id, spec in session.exec(select(TaskRow.job_id, TaskRow.spec).where(col(TaskRow.job_id).in_(ids))):
                specs[job_id].append(dict(spec))
        return specs

    def job_ids_in_states(self, states: Iterable[JobState]) -> list[str]:
        """Ids only, oldest first: recovery loads each job when it gets to it, not every document at once."""
        with self._session() as session:
            rows = session.exec(
                select(JobRow.id)
                .where(col(JobRow.state).in_([s.value for s in states]))
                .order_by(col(JobRow.created_at))
            ).all()
            return list(rows)

    def jobs_in_states(self, states: Iterable[JobState]) -> list[Job]:
        with self._session() as session:
            rows = session.exec(
                select(JobRow).where(col(JobRow.state).in_([s.value for s in states])).order_by(col(JobRow.created_at))
            ).all()
            return [_job(row) for row in rows]

    def list_jobs(
        self, page: int, size: int, q: str | None = None, viewer: Viewer | None = None
    ) -> tuple[list[Job], int]:
        """One page of jobs, newest first, and the total count; `q` searches as Tork's (search.py). With a
        `viewer`, only the jobs they may see (no permissions, or permitted to them or one of their roles)."""
        query = parse_query(q)
        visible = [visible_clause(viewer)] if viewer is not None else []
        with self._session() as session:
            if query.words or query.tags:
                ids, total = self.search.find_jobs(session, query, page, size, *visible)
                rows = session.exec(select(JobRow).where(col(JobRow.id).in_(ids))).all() if ids else []
                by_id = {row.id: row for row in rows}
                return [_job(by_id[i]) for i in ids if i in by_id], total
            total = session.exec(select(func.count()).select_from(JobRow).where(*visible)).one()
            rows = session.exec(
                select(JobRow)
                .where(*visible)
                .order_by(col(JobRow.created_at).desc(), col(JobRow.id).desc())
                .offset((page - 1) * size)
                .limit(size)
            ).all()
            return [_job(row) for row in rows], int(total)

    def task_log(self, task_id: str, page: int, size: int, q: str | None = None) -> tuple[list[dict[str, Any]], int]:
        with self._session() as session:
            return logs.task_log_page(session, self.search, task_id, page, size, q)

    def job_log(self, job_id: str, page: int, size: int, q: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Log parts of every task of a job: latest task first, then newest part first (Tork's order)."""
        with self._session() as session:
            return logs.job_log_page(session, self.search, job_id, page, size, q)

    def neighbour_parts(self, parts: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
        with self._session() as session:
            return logs.neighbour_parts(session, parts)

    def log_parts_after(self, task_id: str, after: int) -> list[dict[str, Any]]:
        with self._session() as session:
            return logs.parts_after(session, task_id, after)

    def job_log_since(self, job_id: str, since: datetime | None, skip: int = 0) -> list[dict[str, Any]]:
        with self._session() as session:
            return logs.job_parts_since(session, job_id, since, skip)

    # --- request ids (idempotent coordinator calls) ---------------------------------------------------

    def get_request(self, request_id: str) -> RequestRow | None:
        with self._session() as session:
            return session.get(RequestRow, request_id)

    def delete_requests_before(self, before: datetime, limit: int = 1000) -> int:
        """Forgets request ids older than `before`, at most `limit` per call (the sweep calls again)."""
        with self._session() as session:
            ids = select(RequestRow.id).where(col(RequestRow.created_at) < before).limit(limit)
            result = session.exec(delete(RequestRow).where(col(RequestRow.id).in_(ids)))
            session.commit()
            return int(result.rowcount or 0)

    # --- users ----------------------------------------------------------------------------------------

    def create_user(self, user: User, password_hash: str) -> bool:
        """Stores a new user; False when the username is taken."""
        with self._session() as session:
            if session.exec(select(UserRow.id).where(UserRow.username == user.username)).first() is not None:
                return False
            session.add(
                UserRow(
                    id=user.id,
                    name=user.name,
                    username=user.username,
                    password_hash=password_hash,
                    created_at=user.created_at or utcnow(),
                    disabled=user.disabled,
                )
            )
            session.commit()
            return True

    def get_user(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash."""
        with self._session() as session:
            row = session.exec(select(UserRow).where(UserRow.username == username)).first()
            if row is None:
                return None
            return user_of(row), row.password_hash

    # --- counts (metrics, nodes) ----------------------------------------------------------------------

    def state_counts(self) -> dict[str, dict[str, int]]:
        """Jobs and tasks per state, over the whole store."""
        with self._session() as session:
            jobs = session.exec(select(JobRow.state, func.count()).group_by(col(JobRow.state))).all()
            tasks = session.exec(select(TaskRow.state, func.count()).group_by(col(TaskRow.state))).all()
            return {"jobs": {s: int(n) for s, n in jobs}, "tasks": {s: int(n) for s, n in tasks}}

    def running_counts(self) -> tuple[int, int]:
        """RUNNING jobs, and RUNNING tasks of RUNNING jobs (Tork's metrics)."""
        running = JobState.RUNNING.value
        with self._session() as session:
            jobs = session.exec(select(func.count()).select_from(JobRow).where(JobRow.state == running)).one()
            tasks = session.exec(
                select(func.count())
                .select_from(TaskRow)
                .join(JobRow, col(JobRow.id) == col(TaskRow.job_id))
                .where(TaskRow.state == TaskState.RUNNING.value, JobRow.state == running)
            ).one()
            return int(jobs), int(tasks)

    def running_tasks_by_node(self) -> dict[str, int]:
        with self._session() as session:
            rows = session.exec(
                select(TaskRow.node_id, func.count())
                .where(TaskRow.state == TaskState.RUNNING.value)
                .group_by(col(TaskRow.node_id))
            ).all()
            return {node: int(n) for node, n in rows if node}


def _job(row: JobRow) -> Job:
    values: dict[str, Any] = {name: getattr(row, name) for name in JOB_COLUMNS}
    for name in ("created_at", "started_at", "completed_at", "failed_at", "delete_at"):
        values[name] = _aware(values[name])
    doc = dict(row.doc)
    if "created_by" in doc:
        doc["created_by"] = User.model_validate(doc["created_by"])
    return Job.model_validate({**doc, **values})


def _task(row: TaskRow) -> Task:
    values: dict[str, Any] = {name: getattr(row, name) for name in TASK_COLUMNS}
    for name in ("created_at", "scheduled_at", "started_at", "completed_at", "failed_at"):
        values[name] = _aware(values[name])
    values["state"] = TaskState(values["state"])
    values["completions"] = max(row.completions or 0, _legacy_completions(row.spec))
    return Task.model_validate(values)


def _legacy_completions(spec: Mapping[str, Any]) -> int:
    """The count a composite stored before revision 0004 kept in its spec; the column takes over from it
    (counts only grow, so the larger of the two is the count). New rows keep 0 there."""
    for kind in COUNTED:
        block = spec.get(kind)
        if isinstance(block, Mapping):
            return int(block.get("completions") or 0)
    return 0
