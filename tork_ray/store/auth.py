"""Users' roles, role membership and job permissions in SQL: what authentication and access control read."""

# Writers: the coordinator only (roles, membership, the first admin); job permission rows are written with
# their job by the coordinator's row writer (writes.py). Readers: the API (logins, the visibility filter).

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, exists, insert, or_
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, delete, select

from tork_ray.domain.models import User, new_id, utcnow
from tork_ray.errors import NotFound
from tork_ray.store.auth_tables import JobPermRow, RoleRow, UserRoleRow
from tork_ray.store.tables import JobRow, UserRow

PUBLIC_ROLE = "public"  # every user is a member, implicitly (a job permitted to `public`: any logged-in user)
ADMIN_ROLE = "admin"  # its members manage users and roles, and see every job
BUILT_IN_ROLES = ((PUBLIC_ROLE, "Public"), (ADMIN_ROLE, "Administrators"))


@dataclass(frozen=True)
class Login:
    """What a login needs: the user, their password hash and the slugs of their roles (`public` included)."""

    user: User
    password_hash: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Viewer:
    """Whom a job list is filtered for: a username and their role slugs."""

    username: str
    roles: frozenset[str]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def user_of(row: Any) -> User:
    """The user a `users` row holds (its password hash stays behind)."""
    return User(
        id=row.id, name=row.name, username=row.username, created_at=_aware(row.created_at), disabled=row.disabled
    )


def role_body(row: Any) -> dict[str, Any]:
    return {"id": row.id, "slug": row.slug, "name": row.name, "createdAt": _aware(row.created_at).isoformat()}


def perm_rows(jobs: Sequence[Any]) -> list[dict[str, Any]]:
    """The jobs_perms rows of new jobs: each permitted user and role, and the creator (who always sees their
    own job). A job without permissions gets none: everyone may see it."""
    rows: dict[tuple[str, str, str], None] = {}
    for job in jobs:
        if not job.permissions:
            continue
        for perm in job.permissions:
            kind = "user" if perm.get("user") else "role"
            rows[(job.id, kind, str(perm.get(kind)))] = None
        rows[(job.id, "user", job.created_by.username)] = None
    return [{"job_id": j, "kind": k, "subject": s} for j, k, s in rows]


def visible_clause(
    viewer: Viewer, id_column: ColumnElement[str] | None = None, perms: Table | None = None
) -> ColumnElement[bool]:
    """Rows `viewer` may see: those without permission rows, and those naming them or one of their roles.
    Jobs by default; for another table (scheduled jobs) pass its id column and a permissions table of the same
    shape as jobs_perms (`job_id` = the row's id, `kind`, `subject`), written with `perm_rows`."""
    c = (perms if perms is not None else JobPermRow.__table__).c  # type: ignore[attr-defined]
    owner = id_column if id_column is not None else col(JobRow.id)
    granted = or_(
        and_(c.kind == "user", c.subject == viewer.username),
        and_(c.kind == "role", c.subject.in_(sorted(viewer.roles))),
    )
    return or_(~exists().where(c.job_id == owner), exists().where(c.job_id == owner, granted))


def backfill_perms(connection: Connection, batch: int = 1000) -> int:
    """Permission rows for jobs stored before jobs_perms existed (their permissions are in the job document):
    run once, when the table is first made, so that old restricted jobs stay hidden from lists too."""
    count = 0
    rows = connection.execute(select(JobRow.id, JobRow.doc).execution_options(yield_per=batch))
    for chunk in rows.partitions(batch):
        found = [
            perm_rows([_Stored(job_id, doc.get("permissions"), (doc.get("created_by") or {}).get("username", ""))])
            for job_id, doc in chunk
            if doc.get("permissions")
        ]
        values = [row for rows_of_job in found for row in rows_of_job]
        if values:
            connection.execute(insert(JobPermRow), values)
            count += len(found)
    return count


@dataclass(frozen=True)
class _Stored:
    """What perm_rows reads of a job, from a stored document."""

    id: str
    permissions: list[dict[str, Any]] | None
    creator: str

    @property
    def created_by(self) -> Any:
        return User(id="", name="", username=self.creator)


class AuthStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def bootstrap(connection: Connection, perms_were_there: bool = True) -> None:
        """The built-in roles, created once (idempotent, inside the store's set-up transaction); permission
        rows of older jobs when the permissions table was just made."""
        if not perms_were_there:
            backfill_perms(connection)
        for slug, name in BUILT_IN_ROLES:
            if connection.execute(select(RoleRow.id).where(RoleRow.slug == slug)).first() is None:
                connection.execute(insert(RoleRow).values(id=slug, slug=slug, name=name, created_at=utcnow()))

    # --- reads (API) -----------------------------------------------------------------------------------

    def login(self, username: str) -> Login | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(UserRow).where(UserRow.username == username)).first()
            if row is None:
                return None
            return Login(
                user_of(row), row.password_hash, frozenset(self._role_slugs(connection, row.id)) | {PUBLIC_ROLE}
            )

    @staticmethod
    def _role_slugs(connection: Connection, user_id: str) -> list[str]:
        return list(
            connection.execute(
                select(RoleRow.slug)
                .join(UserRoleRow, col(UserRoleRow.role_id) == col(RoleRow.id))
                .where(col(UserRoleRow.user_id) == user_id)
                .order_by(col(RoleRow.slug))
            ).scalars()
        )

    def roles(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [role_body(r) for r in connection.execute(select(RoleRow).order_by(col(RoleRow.slug))).all()]

    def role(self, slug: str) -> dict[str, Any]:
        """The role and the usernames of its members (every user, for `public`)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(RoleRow).where(RoleRow.slug == slug)).first()
            if row is None:
                raise NotFound(f"role {slug} not found")
            members = select(UserRow.username).order_by(col(UserRow.username))
            if slug != PUBLIC_ROLE:
                members = members.join(UserRoleRow, col(UserRoleRow.user_id) == col(UserRow.id)).where(
                    col(UserRoleRow.role_id) == row.id
                )
            return {**role_body(row), "users": list(connection.execute(members).scalars())}

    def user_roles(self, username: str) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            user_id = self._user_id(connection, username)
            rows = connection.execute(
                select(RoleRow)
                .outerjoin(
                    UserRoleRow, and_(col(UserRoleRow.role_id) == col(RoleRow.id), col(UserRoleRow.user_id) == user_id)
                )
                .where(or_(col(UserRoleRow.user_id).is_not(None), col(RoleRow.slug) == PUBLIC_ROLE))
                .order_by(col(RoleRow.slug))
            ).all()
            return [role_body(r) for r in rows]

    def existing(self, users: Collection[str], roles: Collection[str]) -> tuple[dict[str, str], dict[str, str]]:
        """{reference: username} and {reference: slug} of the references that name a user (by username or id)
        or a role (by slug or id); unknown ones are absent."""
        with self.engine.connect() as connection:
            found_users: dict[str, str] = {}
            if users:
                refs = sorted(users)
                for uid, name in connection.execute(
                    select(UserRow.id, UserRow.username).where(
                        or_(col(UserRow.username).in_(refs), col(UserRow.id).in_(refs))
                    )
                ).all():
                    found_users.update({ref: name for ref in (uid, name) if ref in users})
            found_roles: dict[str, str] = {}
            if roles:
                refs = sorted(roles)
                for rid, slug in connection.execute(
                    select(RoleRow.id, RoleRow.slug).where(or_(col(RoleRow.slug).in_(refs), col(RoleRow.id).in_(refs)))
                ).all():
                    found_roles.update({ref: slug for ref in (rid, slug) if ref in roles})
            return found_users, found_roles

    # --- writes (coordinator) --------------------------------------------------------------------------

    def create_role(self, slug: str, name: str) -> dict[str, Any] | None:
        """The new role; None when the slug is taken."""
        with self.engine.begin() as connection:
            if connection.execute(select(RoleRow.id).where(RoleRow.slug == slug)).first() is not None:
                return None
            role = RoleRow(id=new_id(), slug=slug, name=name, created_at=utcnow())
            connection.execute(insert(RoleRow).values(id=role.id, slug=slug, name=name, created_at=role.created_at))
            return role_body(role)

    def set_member(self, username: str, slug: str, member: bool) -> None:
        """Adds `username` to role `slug` (or removes them); idempotent. NotFound names the unknown one."""
        with self.engine.begin() as connection:
            self._set_member(connection, username, slug, member)

    def _set_member(self, connection: Connection, username: str, slug: str, member: bool) -> None:
        user_id = self._user_id(connection, username)
        role_id = connection.execute(select(RoleRow.id).where(RoleRow.slug == slug)).scalar()
        if role_id is None:
            raise NotFound(f"role {slug} not found")
        link = and_(col(UserRoleRow.user_id) == user_id, col(UserRoleRow.role_id) == role_id)
        present = connection.execute(select(UserRoleRow.user_id).where(link)).first() is not None
        if member and not present:
            connection.execute(insert(UserRoleRow).values(user_id=user_id, role_id=role_id, created_at=utcnow()))
        elif not member and present:
            connection.execute(delete(UserRoleRow).where(link))

    def set_admin(self, username: str, password_hash: str) -> bool:
        """The configured first admin: created, or its password replaced and the account enabled, and made a
        member of `admin`. True when the user was created."""
        with self.engine.begin() as connection:
            user_id = connection.execute(select(UserRow.id).where(UserRow.username == username)).scalar()
            created = user_id is None
            if created:
                user_id = new_id()
                connection.execute(
                    insert(UserRow).values(
                        id=user_id,
                        name=username,
                        username=username,
                        password_hash=password_hash,
                        created_at=utcnow(),
                        disabled=False,
                    )
                )
            else:
                connection.execute(
                    UserRow.__table__.update()  # type: ignore[attr-defined]
                    .where(UserRow.__table__.c.id == user_id)  # type: ignore[attr-defined]
                    .values(password_hash=password_hash, disabled=False)
                )
            self._set_member(connection, username, ADMIN_ROLE, True)
        return created

    @staticmethod
    def _user_id(connection: Connection, username: str) -> str:
        user_id = connection.execute(select(UserRow.id).where(UserRow.username == username)).scalar()
        if user_id is None:
            raise NotFound(f"user {username} not found")
        return str(user_id)
