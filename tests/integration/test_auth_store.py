"""Roles, membership and the job visibility filter in SQL: the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.integration.test_api_store import _postgres_store, job
from tork_ray.domain.models import User, utcnow
from tork_ray.errors import NotFound
from tork_ray.store.auth import Viewer
from tork_ray.store.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite = Store(f"sqlite:///{tmp_path}/tork.db")
        yield sqlite
        sqlite.close()
    else:
        yield from _postgres_store()


def _user(store: Store, username: str) -> User:
    user = User(id=uuid.uuid4().hex, name=username, username=username, created_at=utcnow())
    assert store.create_user(user, "scrypt$x")
    return user


def _visible(store: Store, viewer: Viewer | None, q: str | None = None) -> set[str]:
    jobs, total = store.list_jobs(1, 20, q, viewer=viewer)
    assert total == len(jobs)
    return {j.name for j in jobs}


def test_built_in_roles_are_made_once(db: Store) -> None:
    again = Store(db.url)  # a second opening (another process) makes nothing twice
    try:
        assert [r["slug"] for r in again.auth.roles()] == ["admin", "public"]
    finally:
        again.close()


def test_roles_and_membership(db: Store) -> None:
    _user(db, "ann")
    assert db.auth.create_role("ops", "Operations") is not None
    assert db.auth.create_role("ops", "Again") is None
    db.auth.set_member("ann", "ops", True)
    db.auth.set_member("ann", "ops", True)
    assert db.auth.role("ops")["users"] == ["ann"]
    login = db.auth.login("ann")
    assert login is not None and login.roles == {"ops", "public"}
    assert "ann" in db.auth.role("public")["users"]
    db.auth.set_member("ann", "ops", False)
    assert db.auth.role("ops")["users"] == []
    with pytest.raises(NotFound, match="user bob not found"):
        db.auth.set_member("bob", "ops", True)
    with pytest.raises(NotFound, match="role nope not found"):
        db.auth.set_member("ann", "nope", True)
    assert db.auth.existing({"ann", "bob"}, {"ops", "nope", "public"}) == (
        {"ann": "ann"},
        {"ops": "ops", "public": "public"},
    )


def test_the_first_admin_is_created_then_reset(db: Store) -> None:
    assert db.auth.set_admin("root", "scrypt$one") is True
    assert db.auth.set_admin("root", "scrypt$two") is False
    login = db.auth.login("root")
    assert login is not None and login.password_hash == "scrypt$two" and "admin" in login.roles


def test_lists_and_search_are_filtered_in_sql(db: Store) -> None:
    creator = _user(db, "carol")
    db.auth.create_role("ops", "Operations")
    _user(db, "ann")
    db.auth.set_member("ann", "ops", True)
    open_job = job("open build")
    by_role = job("ops build", permissions=[{"role": "ops"}], created_by=creator)
    by_user = job("bob build", permissions=[{"user": "bob"}], created_by=creator)
    db.save(jobs=[open_job, by_role])  # the coordinator's write path
    db.import_jobs([by_user])  # the bulk path writes permission rows too
    everyone = {"open build", "ops build", "bob build"}
    assert _visible(db, None) == everyone
    assert _visible(db, Viewer("ann", frozenset({"public", "ops"}))) == {"open build", "ops build"}
    assert _visible(db, Viewer("bob", frozenset({"public"}))) == {"open build", "bob build"}
    assert _visible(db, Viewer("carol", frozenset({"public"}))) == everyone  # the creator
    assert _visible(db, Viewer("dan", frozenset({"public"}))) == {"open build"}
    for q in ("build", "tag:none build", "builds"):
        assert _visible(db, Viewer("dan", frozenset({"public"})), q) <= {"open build"}
    assert _visible(db, Viewer("dan", frozenset({"public"})), "build") == {"open build"}
    assert _visible(db, Viewer("ann", frozenset({"public", "ops"})), "ops") == {"ops build"}
    db.delete_jobs([by_role.id])  # its permission rows go with it
    assert _visible(db, None) == {"open build", "bob build"}


def test_jobs_stored_before_the_permissions_table_get_their_rows(db: Store) -> None:
    creator = _user(db, "carol")
    restricted = job("old restricted", permissions=[{"user": "bob"}], created_by=creator)
    db.save(jobs=[restricted, job("old open")])
    with db.engine.begin() as connection:  # a store made by a version without jobs_perms (nor migrations)
        connection.execute(text("DROP TABLE jobs_perms"))
        connection.execute(text("DROP TABLE alembic_version"))
    reopened = Store(db.url)
    try:
        assert _visible(reopened, Viewer("dan", frozenset({"public"}))) == {"old open"}
        assert _visible(reopened, Viewer("carol", frozenset({"public"}))) == {"old open", "old restricted"}
        assert _visible(reopened, Viewer("bob", frozenset({"public"}))) == {"old open", "old restricted"}
    finally:
        reopened.close()
