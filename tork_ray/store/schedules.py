"""SQL of scheduled jobs: create, read, page, change state, fire a tick (exactly once), delete with instances.

Every write is one transaction. Called by the coordinator (on its I/O thread) and, for reads, by the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, true, update
from sqlmodel import Session, SQLModel, col, delete, select

from tork_ray.domain.models import Job, User
from tork_ray.domain.schedules import ScheduledJob, ScheduleState
from tork_ray.domain.states import JOB_ACTIVE
from tork_ray.store.auth import perm_rows
from tork_ray.store.auth_tables import JobPermRow
from tork_ray.store.schedule_tables import ScheduledInstanceRow, ScheduledJobPermRow, ScheduledJobRow
from tork_ray.store.store import Store
from tork_ray.store.tables import JobRow, JobTagRow, RequestRow, TaskRow
from tork_ray.store.writes import job_values, tag_values

DELETE_BATCH = 500  # jobs deleted per transaction when a scheduled job goes with its instances
# Who asks, for an access check: (username, the names of their roles) as the permission rows store them.
Viewer = tuple[str, Sequence[str]]
_DOC_EXCLUDE = {"id", "state", "cron", "created_at", "last_fired", "permissions"}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLI = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    """Whole milliseconds since the epoch, in integer arithmetic: the fire mark is compared for equality, and a
    float round trip (timestamp() * 1000) can come back one millisecond off."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLI


def from_millis(value: int) -> datetime:
    return _EPOCH + value * _MILLI


@contextmanager
def _session(store: Store) -> Iterator[Session]:
    with Session(store.engine, expire_on_commit=False) as session:
        yield session


def _row(scheduled: ScheduledJob) -> ScheduledJobRow:
    return ScheduledJobRow(
        id=scheduled.id,
        state=scheduled.state.value,
        cron=scheduled.cron,
        created_at=scheduled.created_at,
        last_fired=to_millis(scheduled.last_fired),
        permissions=scheduled.permissions,
        doc=scheduled.model_dump(mode="json", exclude=_DOC_EXCLUDE),
    )


def _scheduled(row: ScheduledJobRow) -> ScheduledJob:
    doc = dict(row.doc)
    doc["created_by"] = User.model_validate(doc["created_by"])
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return ScheduledJob.model_validate(
        {
            **doc,
            "id": row.id,
            "state": ScheduleState(row.state),
            "cron": row.cron,
            "created_at": created,
            "last_fired": from_millis(row.last_fired),
            "permissions": row.permissions,
        }
    )


def _add_request(session: Session, request: dict[str, Any] | None) -> None:
    if request is not None:
        session.execute(insert(RequestRow), [request])


def insert_scheduled_job(store: Store, scheduled: ScheduledJob, request: dict[str, Any] | None = None) -> None:
    """Stores a new scheduled job, its permission rows and the request id that made it, together."""
    with _session(store) as session:
        session.add(_row(scheduled))
        session.flush()  # the row first: the permission rows refer to it
        if perms := _perm_rows(scheduled):
            session.execute(insert(ScheduledJobPermRow), perms)
        _add_request(session, request)
        session.commit()


def _perm_rows(scheduled: ScheduledJob) -> list[dict[str, Any]]:
    rows = {
        (kind, str(entry[kind]))
        for entry in scheduled.permissions or ()
        for kind in ("user", "role")
        if entry.get(kind)
    }
    if rows:  # its creator always sees it (as a job's, store.auth.perm_rows)
        rows.add(("user", scheduled.created_by.username))
    return [{"scheduled_job_id": scheduled.id, "kind": kind, "name": name} for kind, name in sorted(rows)]


def get_scheduled_job(store: Store, scheduled_id: str) -> ScheduledJob | None:
    with _session(store) as session:
        row = session.get(ScheduledJobRow, scheduled_id)
        return _scheduled(row) if row is not None else None


def list_scheduled_jobs(
    store: Store, page: int, size: int, viewer: Viewer | None = None
) -> tuple[list[ScheduledJob], int]:
    """One page of scheduled jobs, newest first, and the total count. With `viewer`, only those it may see:
    without permissions, or naming its username or one of its roles (SPEC §6.2)."""
    visible = _visible_to(viewer)
    with _session(store) as session:
        total = session.exec(select(func.count()).select_from(ScheduledJobRow).where(visible)).one()
        rows = session.exec(
            select(ScheduledJobRow)
            .where(visible)
            .order_by(col(ScheduledJobRow.created_at).desc(), col(ScheduledJobRow.id).desc())
            .offset((page - 1) * size)
            .limit(size)
        ).all()
        return [_scheduled(row) for row in rows], int(total)


def _visible_to(viewer: Viewer | None) -> Any:
    if viewer is None:
        return true()
    perms = select(ScheduledJobPermRow.scheduled_job_id).where(
        col(ScheduledJobPermRow.scheduled_job_id) == col(ScheduledJobRow.id)
    )
    username, roles = viewer
    allowed = perms.where(
        or_(
            and_(col(ScheduledJobPermRow.kind) == "user", col(ScheduledJobPermRow.name) == username),
            and_(col(ScheduledJobPermRow.kind) == "role", col(ScheduledJobPermRow.name).in_(list(roles))),
        )
    )
    return or_(~perms.exists(), allowed.exists())


def active_scheduled_jobs(store: Store) -> list[ScheduledJob]:
    with _session(store) as session:
        rows = session.exec(select(ScheduledJobRow).where(ScheduledJobRow.state == ScheduleState.ACTIVE.value)).all()
        return [_scheduled(row) for row in rows]


def change_state(
    store: Store,
    scheduled_id: str,
    expected: ScheduleState,
    target: ScheduleState,
    mark: datetime | None = None,
    request: dict[str, Any] | None = None,
) -> bool:
    """`expected` → `target` (and the fire mark to `mark`, if given) with the request id, in one transaction;
    False (nothing stored) when the scheduled job is not in `expected`."""
    values: dict[str, Any] = {"state": target.value}
    if mark is not None:
        values["last_fired"] = to_millis(mark)
    with _session(store) as session:
        moved = session.execute(
            update(ScheduledJobRow)
            .where(col(ScheduledJobRow.id) == scheduled_id, col(ScheduledJobRow.state) == expected.value)
            .values(**values)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return False
        _add_request(session, request)
        session.commit()
        return True


# The rows a new instance brings along (table name -> rows), stored in its transaction: its webhook calls.
CreationRows = Callable[[Job], Mapping[str, list[Any]]]


def fire(
    store: Store, scheduled_id: str, previous: datetime, tick: datetime, along: CreationRows | None = None
) -> Job | None:
    """Creates the PENDING job of tick `tick`, exactly once: the fire mark moves from `previous` to `tick` by a
    conditional UPDATE in the transaction that inserts the job. The UPDATE comes first, so it takes the row's
    write lock (PostgreSQL) or the database's (SQLite) before anything is read: of two coordinators firing the
    same tick, the second waits, then matches no row (the mark has moved), and stores nothing. None when the
    tick was fired already, or the scheduled job is paused or gone."""
    with _session(store) as session:
        moved = session.execute(
            update(ScheduledJobRow)
            .where(
                col(ScheduledJobRow.id) == scheduled_id,
                col(ScheduledJobRow.state) == ScheduleState.ACTIVE.value,
                col(ScheduledJobRow.last_fired) == to_millis(previous),
            )
            .values(last_fired=to_millis(tick))
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        row = session.get(ScheduledJobRow, scheduled_id)  # re-read: the job is made from what is stored now
        assert row is not None
        job = _scheduled(row).instance()
        session.execute(insert(JobRow), [job_values(job)])
        if tags := tag_values([job]):
            session.execute(insert(JobTagRow), tags)
        if perms := perm_rows([job]):  # the instance is listed only to whom the scheduled job names
            session.execute(insert(JobPermRow), perms)
        session.execute(insert(ScheduledInstanceRow), [{"job_id": job.id, "scheduled_job_id": scheduled_id}])
        for table, rows in (along(job) if along is not None else {}).items():
            if rows:
                session.execute(insert(SQLModel.metadata.tables[table]), rows)
        session.commit()
        return job


def begin_delete(store: Store, scheduled_id: str, request: dict[str, Any] | None = None) -> list[str] | None:
    """Marks the scheduled job DELETING (it fires no more, even from another coordinator) with the request id,
    and returns the ids of its instances and of their sub-jobs; None when there is no such scheduled job."""
    with _session(store) as session:
        moved = session.execute(
            update(ScheduledJobRow)
            .where(col(ScheduledJobRow.id) == scheduled_id)
            .values(state=ScheduleState.DELETING.value)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        _add_request(session, request)
        session.commit()
        instances = session.exec(
            select(ScheduledInstanceRow.job_id).where(ScheduledInstanceRow.scheduled_job_id == scheduled_id)
        ).all()
        return _with_sub_jobs(session, list(instances))


def _with_sub_jobs(session: Session, job_ids: list[str]) -> list[str]:
    """`job_ids` and, level by level, the sub-jobs their tasks spawned (a sub-job's parent is a task)."""
    found, level = list(job_ids), list(job_ids)
    while level:
        tasks = select(TaskRow.id).where(col(TaskRow.job_id).in_(level))
        level = list(session.exec(select(JobRow.id).where(col(JobRow.parent_id).in_(tasks))).all())
        found += level
    return found


def finish_delete(store: Store, scheduled_id: str, job_ids: list[str]) -> None:
    """Deletes the jobs (tasks, log parts, tags with them), a batch per transaction, then the scheduled job."""
    for start in range(0, len(job_ids), DELETE_BATCH):
        store.delete_jobs(job_ids[start : start + DELETE_BATCH])
    with _session(store) as session:
        session.exec(delete(ScheduledInstanceRow).where(col(ScheduledInstanceRow.scheduled_job_id) == scheduled_id))
        session.exec(delete(ScheduledJobPermRow).where(col(ScheduledJobPermRow.scheduled_job_id) == scheduled_id))
        session.exec(delete(ScheduledJobRow).where(col(ScheduledJobRow.id) == scheduled_id))
        session.commit()


def instance_ids(store: Store, scheduled_id: str) -> list[str]:
    """Ids of the jobs a scheduled job spawned (those not deleted since)."""
    with _session(store) as session:
        rows = session.exec(
            select(ScheduledInstanceRow.job_id).where(ScheduledInstanceRow.scheduled_job_id == scheduled_id)
        ).all()
        return list(rows)


def active_jobs(store: Store, job_ids: list[str]) -> list[str]:
    """Those of `job_ids` not yet in a final state (a delete cancels them first)."""
    active = [state.value for state in JOB_ACTIVE]
    found: list[str] = []
    with _session(store) as session:
        for start in range(0, len(job_ids), DELETE_BATCH):
            batch = job_ids[start : start + DELETE_BATCH]
            query = select(JobRow.id).where(col(JobRow.id).in_(batch), col(JobRow.state).in_(active))
            found += session.exec(query).all()
    return found
