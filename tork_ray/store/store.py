"""The Store: jobs, tasks and log parts in SQL, mapped to and from the domain models."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, create_engine, delete, select

from tork_ray.domain.models import Job, Task, User, new_id, utcnow
from tork_ray.domain.states import JobState, TaskState
from tork_ray.store.tables import JobRow, TaskLogPartRow, TaskRow

_JOB_COLUMNS = (
    "id",
    "name",
    "description",
    "state",
    "parent_id",
    "created_at",
    "started_at",
    "completed_at",
    "failed_at",
    "delete_at",
    "position",
    "task_count",
    "progress",
    "result",
    "error",
)
_TASK_COLUMNS = (
    "id",
    "job_id",
    "parent_id",
    "position",
    "name",
    "state",
    "queue",
    "priority",
    "created_at",
    "scheduled_at",
    "started_at",
    "completed_at",
    "failed_at",
    "error",
    "result",
    "node_id",
    "progress",
    "spec",
)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so API readers never block the writer."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """All SQL of tork_ray. Writers: the coordinator only. Readers: the coordinator and the API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        SQLModel.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def ping(self) -> None:
        with self._session() as session:
            session.exec(select(func.count()).select_from(JobRow).where(col(JobRow.id) == ""))

    # --- writes (coordinator) -------------------------------------------------------------------------

    def save(self, jobs: Iterable[Job] = (), tasks: Iterable[Task] = ()) -> None:
        """Upserts jobs and tasks in one transaction, so a state change is stored whole or not at all."""
        with self._session() as session:
            for job in jobs:
                session.merge(_job_row(job))
            for task in tasks:
                session.merge(_task_row(task))
            session.commit()

    def append_log(self, task_id: str, contents: str) -> int:
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
            session.exec(delete(JobRow).where(col(JobRow.id).in_(job_ids)))
            session.commit()

    # --- reads ----------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        with self._session() as session:
            row = session.get(JobRow, job_id)
            return _job(row) if row else None

    def get_task(self, task_id: str) -> Task | None:
        with self._session() as session:
            row = session.get(TaskRow, task_id)
            return _task(row) if row else None

    def job_tasks(self, job_id: str) -> list[Task]:
        """Every task instance of a job, ordered as Tork's `execution`: position, then start."""
        with self._session() as session:
            rows = session.exec(
                select(TaskRow).where(TaskRow.job_id == job_id).order_by(col(TaskRow.position), col(TaskRow.created_at))
            ).all()
            return [_task(row) for row in rows]

    def jobs_in_states(self, states: Iterable[JobState]) -> list[Job]:
        with self._session() as session:
            rows = session.exec(
                select(JobRow).where(col(JobRow.state).in_([s.value for s in states])).order_by(col(JobRow.created_at))
            ).all()
            return [_job(row) for row in rows]

    def list_jobs(self, page: int, size: int) -> tuple[list[Job], int]:
        """One page of jobs, newest first, and the total count."""
        with self._session() as session:
            total = session.exec(select(func.count()).select_from(JobRow)).one()
            rows = session.exec(
                select(JobRow).order_by(col(JobRow.created_at).desc()).offset((page - 1) * size).limit(size)
            ).all()
            return [_job(row) for row in rows], int(total)

    def task_log(self, task_id: str, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
        with self._session() as session:
            total = session.exec(
                select(func.count()).select_from(TaskLogPartRow).where(TaskLogPartRow.task_id == task_id)
            ).one()
            rows = session.exec(
                select(TaskLogPartRow)
                .where(TaskLogPartRow.task_id == task_id)
                .order_by(col(TaskLogPartRow.number).desc())
                .offset((page - 1) * size)
                .limit(size)
            ).all()
            return [_log_part(row) for row in rows], int(total)

    def job_log(self, job_id: str, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
        """Log parts of every task of a job: latest task first, then newest part first (Tork's order)."""
        with self._session() as session:
            joined = select(TaskLogPartRow).join(TaskRow, col(TaskRow.id) == col(TaskLogPartRow.task_id))
            total = session.exec(
                select(func.count())
                .select_from(TaskLogPartRow)
                .join(TaskRow, col(TaskRow.id) == col(TaskLogPartRow.task_id))
                .where(TaskRow.job_id == job_id)
            ).one()
            rows = session.exec(
                joined.where(TaskRow.job_id == job_id)
                .order_by(
                    col(TaskRow.position).desc(), col(TaskRow.created_at).desc(), col(TaskLogPartRow.number).desc()
                )
                .offset((page - 1) * size)
                .limit(size)
            ).all()
            return [_log_part(row) for row in rows], int(total)


def _log_part(row: TaskLogPartRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "taskId": row.task_id,
        "contents": row.contents,
        "createdAt": row.created_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
    }


def _job_row(job: Job) -> JobRow:
    data = job.model_dump(mode="json", exclude=set(_JOB_COLUMNS))
    return JobRow(doc=data, **{name: getattr(job, name) for name in _JOB_COLUMNS})


def _job(row: JobRow) -> Job:
    values: dict[str, Any] = {name: getattr(row, name) for name in _JOB_COLUMNS}
    for name in ("created_at", "started_at", "completed_at", "failed_at", "delete_at"):
        values[name] = _aware(values[name])
    doc = dict(row.doc)
    if "created_by" in doc:
        doc["created_by"] = User.model_validate(doc["created_by"])
    return Job.model_validate({**doc, **values})


def _task_row(task: Task) -> TaskRow:
    return TaskRow(**{name: getattr(task, name) for name in _TASK_COLUMNS})


def _task(row: TaskRow) -> Task:
    values: dict[str, Any] = {name: getattr(row, name) for name in _TASK_COLUMNS}
    for name in ("created_at", "scheduled_at", "started_at", "completed_at", "failed_at"):
        values[name] = _aware(values[name])
    values["state"] = TaskState(values["state"])
    return Task.model_validate(values)
