"""Users, roles and membership over HTTP with auth on: messages, admin-only management, the first admin,
createdBy, permission validation and inheritance by sub-jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.auth_api import AuthApi, auth_api
from tests.polling import poll_until


@pytest.fixture(scope="module")
def api(live_engine: LiveEngine) -> Iterator[AuthApi]:
    with auth_api(live_engine) as api:
        yield api


def _job(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": "t", "image": TEST_IMAGE, "run": "true"}], **extra}


def test_built_in_guest_and_public_exist_and_guest_cannot_log_in(api: AuthApi) -> None:
    with api.as_admin() as http:
        slugs = {role["slug"] for role in http.get("/roles").json()}
        assert {"public", "admin"} <= slugs
        guest_roles = http.get("/users/guest/roles").json()
        assert [role["slug"] for role in guest_roles] == ["public"]
    with api.client(auth=("guest", "")) as http:
        assert http.get("/jobs").status_code == 401


def test_role_routes_answer_with_messages_naming_the_thing(api: AuthApi) -> None:
    slug = f"ops-{api.tag}"
    with api.as_admin() as http:
        created = http.post("/roles", json={"slug": slug, "name": "Operations"})
        assert created.status_code == 200, created.text
        assert created.json()["slug"] == slug and created.json()["name"] == "Operations"
        assert "password" not in created.text
        again = http.post("/roles", json={"slug": slug})
        assert (again.status_code, again.json()["message"]) == (409, f"role {slug} already exists")
        assert http.post("/roles", json={}).json()["message"] == "must provide slug"
        bad = http.post("/roles", json={"slug": "Not A Slug"})
        assert bad.status_code == 400 and "Not A Slug" in bad.json()["message"]
        assert http.post("/roles", content=b"{").status_code == 400
        missing = http.get("/roles/nope-nope")
        assert (missing.status_code, missing.json()["message"]) == (404, "role nope-nope not found")
        no_user = http.put(f"/users/nobody-{api.tag}/roles/{slug}")
        assert (no_user.status_code, no_user.json()["message"]) == (404, f"user nobody-{api.tag} not found")
        no_role = http.put(f"/users/{api.admin[0]}/roles/nope-nope")
        assert (no_role.status_code, no_role.json()["message"]) == (404, "role nope-nope not found")
        public = http.put(f"/users/{api.admin[0]}/roles/public")
        assert public.status_code == 400 and "public" in public.json()["message"]
        assert http.get(f"/users/nobody-{api.tag}/roles").status_code == 404


def test_membership_put_and_delete_are_idempotent(api: AuthApi) -> None:
    user, _ = api.new_user("joiner")
    slug = api.new_role("crew")
    with api.as_admin() as http:
        for _ in range(2):
            assert http.put(f"/users/{user}/roles/{slug}").json() == {"status": "OK"}
        assert http.get(f"/roles/{slug}").json()["users"] == [user]
        assert [r["slug"] for r in http.get(f"/users/{user}/roles").json()] == sorted([slug, "public"])
        for _ in range(2):
            assert http.delete(f"/users/{user}/roles/{slug}").json() == {"status": "OK"}
        assert http.get(f"/roles/{slug}").json()["users"] == []


def test_users_keep_torks_shape_and_messages_and_need_an_admin(api: AuthApi) -> None:
    user, password = api.new_user("plain")
    with api.client(auth=(user, password)) as http:
        refused = http.post("/users", json={"username": f"x-{api.tag}", "password": "p"})
        assert (refused.status_code, refused.json()["message"]) == (403, "this needs the admin role")
        assert http.post("/roles", json={"slug": f"x-{api.tag}"}).status_code == 403
        # A user reads their own roles, not another's.
        assert http.get(f"/users/{user}/roles").status_code == 200
        assert http.get(f"/users/{api.admin[0]}/roles").status_code == 403
    with api.as_admin() as http:
        taken = http.post("/users", json={"username": user, "password": "p"})
        assert (taken.status_code, taken.json()["message"]) == (400, "user already exists")
        assert http.post("/users", json={"username": "x"}).json()["message"] == "must provide password"
        made = http.post("/users", json={"username": f"shape-{api.tag}", "password": "p", "name": "S"}).json()
        assert set(made) == {"id", "name", "username", "createdAt"}
    with api.with_key() as http:  # the API key holder manages users too
        assert http.post("/users", json={"username": f"bykey-{api.tag}", "password": "p"}).status_code == 200


def test_the_first_admin_is_made_once_and_reset_when_its_password_changes(live_engine: LiveEngine) -> None:
    with auth_api(live_engine) as first:
        admin, password = first.admin
        with first.as_admin() as http:
            assert http.get(f"/roles/{'admin'}").json()["users"].count(admin) == 1
        with auth_api(live_engine, admin_username=admin, admin_password=password) as same:
            with same.as_admin() as http:
                assert http.get("/jobs").status_code == 200
            # Same password: nothing was written, so the hash is the one the first API stored.
            assert live_engine.store.auth.login(admin) is not None
        before = live_engine.store.auth.login(admin)
        with auth_api(live_engine, admin_username=admin, admin_password="a new password") as changed:
            after = live_engine.store.auth.login(admin)
            assert before is not None and after is not None and before.password_hash != after.password_hash
            with changed.client(auth=(admin, "a new password")) as http:
                assert http.get("/jobs").status_code == 200
            with changed.client(auth=(admin, password)) as http:
                assert http.get("/jobs").status_code == 401
        # The first API had the old password verified and cached: the stored hash changed, so it misses.
        with first.as_admin() as http:
            assert http.get("/jobs").status_code == 401


def test_jobs_record_the_caller_as_created_by(api: AuthApi, live_engine: LiveEngine) -> None:
    user, password = api.new_user("author")
    with api.client(auth=(user, password)) as http:
        summary = http.post("/jobs", json=_job("by a user")).json()
        assert summary["createdBy"]["username"] == user
        assert "password" not in str(summary["createdBy"]).lower()
        assert http.get(f"/jobs/{summary['id']}").json()["createdBy"]["username"] == user
    with api.with_key() as http:
        assert http.post("/jobs", json=_job("by the key")).json()["createdBy"]["username"] == "guest"
    assert live_engine.submit_json(_job("auth off"))["createdBy"]["username"] == "guest"


def test_permissions_must_name_existing_users_and_roles(api: AuthApi) -> None:
    user, password = api.new_user("perm")
    with api.client(auth=(user, password)) as http:
        unknown = http.post("/jobs", json=_job("p", permissions=[{"user": "ghost-user"}, {"role": "ghost-role"}]))
        assert unknown.status_code == 400
        message = unknown.json()["message"]
        assert "invalidusername" in message and "ghost-user" in message
        assert "invalidrole" in message and "ghost-role" in message
        both = http.post("/jobs", json=_job("p", permissions=[{"user": user, "role": "public"}]))
        assert both.status_code == 400 and "exactly one of user or role" in both.json()["message"]
        # A user may be named by id too: stored as the username.
        user_id = api.authenticator.store.auth.login(user)
        assert user_id is not None
        by_id = http.post("/jobs", json=_job("p", permissions=[{"user": user_id.user.id}, {"role": "public"}]))
        assert by_id.status_code == 200, by_id.text
        stored = http.get(f"/jobs/{by_id.json()['id']}").json()["permissions"]
        assert stored == [{"user": user}, {"role": "public"}]


def test_a_creator_sees_their_own_job_and_public_means_every_user(api: AuthApi) -> None:
    author, other = api.new_user("maker"), api.new_user("other")
    slug = api.new_role("nobody-here")
    with api.client(auth=author) as http:
        private = http.post("/jobs", json=_job("mine", permissions=[{"role": slug}])).json()["id"]
        public = http.post("/jobs", json=_job("ours", permissions=[{"role": "public"}])).json()["id"]
        assert http.get(f"/jobs/{private}").status_code == 200
    with api.client(auth=other) as http:
        assert http.get(f"/jobs/{private}").status_code == 404
        assert http.get(f"/jobs/{public}").status_code == 200


@pytest.mark.parametrize("detached", [False, True])
def test_sub_jobs_inherit_the_parents_permissions(api: AuthApi, detached: bool) -> None:
    member, stranger = api.new_user("sub-member"), api.new_user("sub-stranger")
    slug = api.new_role("sub-team", member[0])
    subjob = {"name": "child", "detached": detached, "tasks": [{"name": "c", "image": TEST_IMAGE, "run": "true"}]}
    job = {"name": "parent", "permissions": [{"role": slug}], "tasks": [{"name": "s", "subjob": subjob}]}
    with api.as_admin() as http:
        parent = http.post("/jobs", json=job).json()["id"]

        def child_id() -> str | None:
            execution = http.get(f"/jobs/{parent}").json().get("execution") or []
            return next((t["subjob"]["id"] for t in execution if t.get("subjob", {}).get("id")), None)

        child = poll_until(child_id, 60, "the sub-job to be created")
        assert http.get(f"/jobs/{child}").json()["permissions"] == [{"role": slug}]
    with api.client(auth=member) as http:
        assert http.get(f"/jobs/{child}").status_code == 200
    with api.client(auth=stranger) as http:
        assert http.get(f"/jobs/{child}").status_code == 404
        listed = {j["id"] for j in http.get("/jobs", params={"size": "20"}).json()["items"]}
        assert child not in listed and parent not in listed
