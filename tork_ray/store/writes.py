"""The coordinator's write path: one upsert statement per table per save, and each row's previous state."""

# The coordinator saves on every state change (several times per task), so this path is kept lean: a Core
# `INSERT ... ON CONFLICT DO UPDATE` instead of the ORM's load-then-update (a fifth of the time), and the
# previous states of active rows remembered here instead of read back (they feed the metrics counters and
# tell new jobs, whose tags must be written, from known ones).

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tork_ray.domain.models import ITEM_KEY, Job, Task
from tork_ray.domain.redact import redact_text, secret_values
from tork_ray.domain.states import JOB_TERMINAL, TASK_TERMINAL, TaskState
from tork_ray.store.auth import perm_rows
from tork_ray.store.auth_tables import JobPermRow
from tork_ray.store.tables import JobRow, JobTagRow, TaskRow

JOB_COLUMNS = (
    "id", "name", "description", "state", "parent_id", "created_at", "started_at", "completed_at", "failed_at",
    "delete_at", "position", "task_count", "progress", "result", "error",
)  # fmt: skip
TASK_COLUMNS = (
    "id", "job_id", "parent_id", "position", "name", "state", "queue", "priority", "created_at", "scheduled_at",
    "started_at", "completed_at", "failed_at", "error", "result", "node_id", "progress", "redelivered", "completions",
    "spec",
)  # fmt: skip
# What changes in a job's row once it exists (its state, stamps, position, progress, outcome). A save that changed
# nothing else writes only these (RowWriter.save's `narrow`): not the document (tasks, context, ...), which for
# a sequential job of n tasks was serialised and written again at each of its n positions, O(n^2) bytes a job,
# and not `state` when it is the stored one, which fires the search index's update trigger (search.py).
JOB_PROGRESS_COLUMNS = (
    "state", "started_at", "completed_at", "failed_at", "delete_at", "position", "task_count", "progress", "result",
    "error",
)  # fmt: skip
_FINAL = frozenset(s.value for s in JOB_TERMINAL) | frozenset(s.value for s in TASK_TERMINAL)


@dataclass(frozen=True)
class Change:
    """A saved row and its state before and after: `old` is None for a new row."""

    record: Job | Task
    old: str | None
    new: str


def job_values(job: Job) -> dict[str, Any]:
    values = {name: getattr(job, name) for name in JOB_COLUMNS}
    values["doc"] = job.model_dump(mode="json", exclude=set(JOB_COLUMNS))
    if job.secrets or job.hidden:
        # Name and description are searchable, so never sealed: a secret typed (or, for a sub-job's name,
        # rendered) into them is stored redacted instead, as the API would show it anyway.
        hidden = sorted(secret_values(job.secrets) | set(job.hidden), key=len, reverse=True)
        values["name"] = redact_text(job.name, hidden)
        values["description"] = redact_text(job.description, hidden) if job.description else job.description
    return values


def progress_values(job: Job, with_state: bool) -> dict[str, Any]:
    values = {name: getattr(job, name) for name in JOB_PROGRESS_COLUMNS if with_state or name != "state"}
    values["row_id"] = job.id
    return values


def task_values(task: Task) -> dict[str, Any]:
    values = {name: getattr(task, name) for name in TASK_COLUMNS}
    item = task.spec.get(ITEM_KEY)
    values["item_index"] = int(item["index"]) if isinstance(item, Mapping) and "index" in item else None
    return values


def tag_values(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    return [{"job_id": job.id, "tag": tag, "created_at": job.created_at} for job in jobs for tag in set(job.tags)]


class RowWriter:
    def __init__(self, dialect_name: str) -> None:
        self._insert = postgres_insert if dialect_name == "postgresql" else sqlite_insert
        # (table, id) -> the state last saved, for rows not yet final; a final row is forgotten (and read
        # back from the table should it ever be saved again, e.g. by a restart).
        self._states: dict[tuple[str, str], str] = {}
        # Ids the coordinator has just created: known to be absent from the table, so not looked up.
        self._new: set[tuple[str, str]] = set()
        self._statements: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._completions: Any = None

    def save(
        self, connection: Connection, jobs: Sequence[Job], tasks: Sequence[Task], narrow: AbstractSet[str] = frozenset()
    ) -> list[Change]:
        """Upserts `jobs` and `tasks`; a job whose id is in `narrow` and whose row exists changed only in
        JOB_PROGRESS_COLUMNS since it was last saved, and only those are written."""
        changes: list[Change] = []
        if jobs:
            table = JobRow.__table__  # type: ignore[attr-defined]
            old = self._previous(connection, table, [job.id for job in jobs])
            whole = [job for job in jobs if job.id not in narrow or job.id not in old]
            if whole:
                self._upsert(connection, table, [job_values(job) for job in whole])
            progressed = [job for job in jobs if job.id in narrow and job.id in old]
            for moved in (True, False):
                rows = [progress_values(job, moved) for job in progressed if (old[job.id] != str(job.state)) is moved]
                if rows:
                    connection.execute(self._progress_statement(moved), rows)
            new_jobs = [job for job in jobs if job.id not in old]
            if tags := tag_values(new_jobs):
                connection.execute(self._insert(JobTagRow.__table__).on_conflict_do_nothing(), tags)  # type: ignore[attr-defined]
            # Who may see a new job, written with it: the visibility filter of GET /jobs reads these rows.
            if perms := perm_rows(new_jobs):
                connection.execute(self._insert(JobPermRow.__table__).on_conflict_do_nothing(), perms)  # type: ignore[attr-defined]
            changes += self._changes(jobs, old)
        if tasks:
            old = self._previous(connection, TaskRow.__table__, [task.id for task in tasks])  # type: ignore[attr-defined]
            self._upsert(connection, TaskRow.__table__, [task_values(task) for task in tasks])  # type: ignore[attr-defined]
            changes += self._changes(tasks, old)
        return changes

    def cancel_created(self, connection: Connection, job_ids: AbstractSet[str]) -> int:
        """CANCELLED, in one UPDATE, every CREATED task of these jobs (stored each children, never held by the
        coordinator); how many. None of them is in _states: they were stored, not saved through here."""
        table = TaskRow.__table__  # type: ignore[attr-defined]
        statement = (
            update(table)
            .where(table.c.job_id.in_(sorted(job_ids)), table.c.state == TaskState.CREATED.value)
            .values(state=TaskState.CANCELLED.value)
        )
        return int(connection.execute(statement).rowcount or 0)

    def _progress_statement(self, with_state: bool) -> Any:
        key = ("jobs:progress", (str(with_state),))
        if key not in self._statements:
            table = JobRow.__table__  # type: ignore[attr-defined]
            columns = [name for name in JOB_PROGRESS_COLUMNS if with_state or name != "state"]
            # Typed as their columns: result and error are sealed (crypto.py) on the way in.
            values = {name: bindparam(name, type_=table.c[name].type) for name in columns}
            self._statements[key] = update(table).where(table.c.id == bindparam("row_id")).values(values)
        return self._statements[key]

    def save_completions(self, connection: Connection, counts: Mapping[str, int]) -> None:
        """Sets the children counted home of composites whose row is otherwise unchanged: one narrow UPDATE,
        the spec (every child's definition, sealed) neither serialised nor sealed nor written again."""
        if counts:
            rows = [{"row_id": task_id, "count": count} for task_id, count in counts.items()]
            connection.execute(self._completions_statement(), rows)

    def _completions_statement(self) -> Any:
        if self._completions is None:
            table = TaskRow.__table__  # type: ignore[attr-defined]
            self._completions = (
                update(table).where(table.c.id == bindparam("row_id")).values(completions=bindparam("count"))
            )
        return self._completions

    def forget(self, table: str, ids: Sequence[str]) -> None:
        for row_id in ids:
            self._states.pop((table, row_id), None)

    def expect_new(self, table: str, ids: Iterable[str]) -> None:
        """Rows about to be inserted for the first time: their save skips the lookup of a previous state
        (a submit's job and first task are new by construction, and the lookup was a third of its writes)."""
        self._new.update((table, row_id) for row_id in ids)

    def _previous(self, connection: Connection, table: Table, ids: list[str]) -> dict[str, str]:
        """Previous state of each id that exists (ids absent from the result are new rows)."""
        known = {i: self._states[(table.name, i)] for i in ids if (table.name, i) in self._states}
        unknown = [i for i in ids if i not in known and (table.name, i) not in self._new]
        if unknown:
            rows = connection.execute(select(table.c.id, table.c.state).where(table.c.id.in_(unknown))).all()
            known.update({row_id: state for row_id, state in rows})
        return known

    def _upsert(self, connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        connection.execute(self._upsert_statement(table, tuple(rows[0])), rows)

    def _upsert_statement(self, table: Table, columns: tuple[str, ...]) -> Any:
        # Built once per table and shape: the same statement object lets SQLAlchemy reuse its compiled form.
        key = (table.name, columns)
        if key not in self._statements:
            statement = self._insert(table)
            updated = {name: statement.excluded[name] for name in columns if name != "id"}
            self._statements[key] = statement.on_conflict_do_update(index_elements=["id"], set_=updated)
        return self._statements[key]

    @staticmethod
    def _changes(records: Sequence[Job | Task], old: dict[str, str]) -> list[Change]:
        return [Change(record, old.get(record.id), str(record.state)) for record in records]

    def remember(self, changes: Sequence[Change]) -> None:
        """After the commit: the saved rows' states, for the next save's lookup (a rolled back save must not
        leave states here that the table does not have)."""
        for change in changes:
            table = "jobs" if isinstance(change.record, Job) else "tasks"
            self._new.discard((table, change.record.id))
            if change.new in _FINAL:
                self._states.pop((table, change.record.id), None)
            else:
                self._states[(table, change.record.id)] = change.new
