"""Every route of the app, walked with no credentials, wrong ones, a user without access to the job, one with
access (through a role), and the admin, over real HTTP against the session engine with basic and key auth on.

The routes come from `app.routes`: a route added later without a case here fails `test_every_route_has_a_case`
(add it to CASES with its kind)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.auth_api import AuthApi, auth_api
from tests.polling import poll_until

# What each kind of route answers each caller (OK: the route ran; see Case.ok for its status).
OPEN, JOB, ANY, ADMIN, SELF, UI, UI_JOB = "open", "job", "any", "admin", "self", "ui", "ui_job"
EXPECTED: dict[str, dict[str, int | None]] = {
    OPEN: {"none": None, "wrong": None, "stranger": None, "member": None, "admin": None},
    JOB: {"none": 401, "wrong": 401, "stranger": 404, "member": None, "admin": None},
    ANY: {"none": 401, "wrong": 401, "stranger": None, "member": None, "admin": None},
    ADMIN: {"none": 401, "wrong": 401, "stranger": 403, "member": 403, "admin": None},
    SELF: {"none": 401, "wrong": 401, "stranger": 403, "member": None, "admin": None},  # the member's own
    # The web UI's pages: without (valid) credentials a browser is sent to the sign-in page.
    UI: {"none": 303, "wrong": 303, "stranger": None, "member": None, "admin": None},
    UI_JOB: {"none": 303, "wrong": 303, "stranger": 404, "member": None, "admin": None},
}


@dataclass
class World:
    api: AuthApi
    job_id: str
    task_id: str
    member: tuple[str, str]
    stranger: tuple[str, str]
    team: str
    spare: str


Request = Callable[[World], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    kind: str
    request: Request
    ok: int = 200  # the status when the caller may use the route
    stream: bool = False  # a live stream that does not end: only its status is read


def _get(path: str) -> Request:
    return lambda w: (path.format(job=w.job_id, task=w.task_id, member=w.member[0], team=w.team, spare=w.spare), {})


def _job_body(w: World) -> tuple[str, dict[str, Any]]:
    body = {"name": "walk", "tasks": [{"name": "t", "image": TEST_IMAGE, "queue": "other", "run": "true"}]}
    return "/jobs", {"json": body}


def _ui_yaml(w: World) -> tuple[str, dict[str, Any]]:
    body = f"name: walk\ntasks:\n  - name: t\n    image: {TEST_IMAGE}\n    queue: other\n    run: 'true'\n"
    return "/ui/submit", {"content": body, "headers": {"Content-Type": "text/yaml"}}


def _ui_schedule_yaml(w: World) -> tuple[str, dict[str, Any]]:
    return "/ui/scheduled", {"json": _schedule_body(w)}


def _new_user(w: World) -> tuple[str, dict[str, Any]]:
    return "/users", {"json": {"username": f"made-{uuid.uuid4().hex[:10]}", "password": "pw"}}


def _new_role(w: World) -> tuple[str, dict[str, Any]]:
    return "/roles", {"json": {"slug": f"made-{uuid.uuid4().hex[:10]}"}}


def _schedule_body(w: World) -> dict[str, Any]:
    return {
        "name": f"yearly plans {w.api.tag}",
        "schedule": {"cron": "0 0 1 1 *"},  # no instance fires while the walk runs
        "permissions": [{"role": w.team}],
        "tasks": [{"name": "t", "image": TEST_IMAGE, "queue": "other", "run": "true"}],
    }


def _new_schedule(w: World) -> tuple[str, dict[str, Any]]:
    return "/scheduled-jobs", {"json": _schedule_body(w)}


def _fresh_schedule(path: str, paused: bool = False) -> Request:
    """A new scheduled job for each caller (pause, resume and delete change it), restricted to the team."""

    def request(w: World) -> tuple[str, dict[str, Any]]:
        with w.api.as_admin() as http:
            made = http.post("/scheduled-jobs", json=_schedule_body(w))
            assert made.status_code == 200, made.text
            scheduled_id = made.json()["id"]
            if paused:
                assert http.put(f"/scheduled-jobs/{scheduled_id}/pause").status_code == 200
        return path.format(scheduled=scheduled_id), {}

    return request


CASES: dict[str, Case] = {
    "GET /health": Case(OPEN, _get("/health")),
    "GET /docs": Case(ANY, _get("/docs")),
    "GET /docs/oauth2-redirect": Case(ANY, _get("/docs/oauth2-redirect")),
    "GET /redoc": Case(ANY, _get("/redoc")),
    "GET /openapi.json": Case(ANY, _get("/openapi.json")),
    "POST /jobs": Case(ANY, _job_body),
    "GET /jobs": Case(ANY, _get("/jobs")),
    "GET /jobs/{job_id}": Case(JOB, _get("/jobs/{job}")),
    "GET /jobs/{job_id}/log": Case(JOB, _get("/jobs/{job}/log")),
    "GET /jobs/{job_id}/log/stream": Case(JOB, _get("/jobs/{job}/log/stream")),
    # The job is COMPLETED: a caller who may touch it gets the state's refusal, not a 404.
    "PUT /jobs/{job_id}/cancel": Case(JOB, _get("/jobs/{job}/cancel"), ok=400),
    "PUT /jobs/{job_id}/restart": Case(JOB, _get("/jobs/{job}/restart"), ok=400),
    "GET /tasks/{task_id}": Case(JOB, _get("/tasks/{task}")),
    "GET /tasks/{task_id}/log": Case(JOB, _get("/tasks/{task}/log")),
    "GET /tasks/{task_id}/log/stream": Case(JOB, _get("/tasks/{task}/log/stream")),
    "GET /queues": Case(ANY, _get("/queues")),
    "GET /queues/{name}": Case(ANY, _get("/queues/other")),
    "DELETE /queues/{name}": Case(ADMIN, _get("/queues/other")),
    "GET /nodes": Case(ANY, _get("/nodes")),
    "GET /metrics": Case(ANY, _get("/metrics")),
    "GET /metrics/prometheus": Case(ANY, _get("/metrics/prometheus")),
    "POST /users": Case(ADMIN, _new_user),
    "POST /roles": Case(ADMIN, _new_role),
    "GET /roles": Case(ANY, _get("/roles")),
    "GET /roles/{slug}": Case(ADMIN, _get("/roles/{team}")),
    "GET /users/{username}/roles": Case(SELF, _get("/users/{member}/roles")),
    "PUT /users/{username}/roles/{slug}": Case(ADMIN, _get("/users/{member}/roles/{spare}")),
    "DELETE /users/{username}/roles/{slug}": Case(ADMIN, _get("/users/{member}/roles/{spare}")),
    "POST /scheduled-jobs": Case(ANY, _new_schedule),
    "GET /scheduled-jobs": Case(ANY, _get("/scheduled-jobs")),
    "GET /scheduled-jobs/{scheduled_job_id}": Case(JOB, _fresh_schedule("/scheduled-jobs/{scheduled}")),
    "PUT /scheduled-jobs/{scheduled_job_id}/pause": Case(JOB, _fresh_schedule("/scheduled-jobs/{scheduled}/pause")),
    # The web UI (tork_ray/ui/): the same rules through the same handlers, pages redirect instead of a 401.
    "GET /": Case(OPEN, _get("/"), ok=307),
    "GET /ui/": Case(UI, _get("/ui/")),
    "GET /ui/jobs": Case(UI, _get("/ui/jobs")),
    "GET /ui/jobs/events": Case(UI, _get("/ui/jobs/events"), stream=True),
    "GET /ui/jobs/{job_id}": Case(UI_JOB, _get("/ui/jobs/{job}")),
    "GET /ui/jobs/{job_id}/events": Case(UI_JOB, _get("/ui/jobs/{job}/events"), stream=True),
    "PUT /ui/jobs/{job_id}/{action}": Case(JOB, _get("/ui/jobs/{job}/cancel"), ok=400),
    "GET /ui/jobs/{job_id}/log/stream": Case(UI_JOB, _get("/ui/jobs/{job}/log/stream")),
    "GET /ui/tasks/{task_id}/log/stream": Case(UI_JOB, _get("/ui/tasks/{task}/log/stream")),
    "GET /ui/submit": Case(UI, _get("/ui/submit")),
    "POST /ui/submit": Case(ANY, _ui_yaml),
    "GET /ui/scheduled": Case(UI, _get("/ui/scheduled")),
    "GET /ui/scheduled/events": Case(UI, _get("/ui/scheduled/events"), stream=True),
    "GET /ui/scheduled/new": Case(UI, _get("/ui/scheduled/new")),
    "POST /ui/scheduled": Case(ANY, _ui_schedule_yaml),
    "PUT /ui/scheduled/{scheduled_id}/{action}": Case(JOB, _fresh_schedule("/ui/scheduled/{scheduled}/pause")),
    "DELETE /ui/scheduled/{scheduled_id}": Case(JOB, _fresh_schedule("/ui/scheduled/{scheduled}")),
    "GET /ui/cluster": Case(UI, _get("/ui/cluster")),
    "GET /ui/cluster/events": Case(UI, _get("/ui/cluster/events"), stream=True),
    "GET /ui/login": Case(OPEN, _get("/ui/login")),
    "POST /ui/login": Case(OPEN, _get("/ui/login")),  # no credentials in the form: the form again, saying so
    "POST /ui/logout": Case(OPEN, _get("/ui/logout"), ok=303),
    "PUT /scheduled-jobs/{scheduled_job_id}/resume": Case(
        JOB, _fresh_schedule("/scheduled-jobs/{scheduled}/resume", paused=True)
    ),
    "DELETE /scheduled-jobs/{scheduled_job_id}": Case(JOB, _fresh_schedule("/scheduled-jobs/{scheduled}")),
}


def app_routes(api: AuthApi) -> list[str]:
    return sorted(
        f"{method} {route.path}"
        for route in iter_route_contexts(api.app.routes)
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    )


@pytest.fixture(scope="module")
def world(live_engine: LiveEngine) -> Iterator[World]:
    with auth_api(live_engine) as api:
        member, stranger = api.new_user("member"), api.new_user("stranger")
        team, spare = api.new_role("team", member[0]), api.new_role("spare")
        job = {
            "name": f"secret plans {api.tag}",
            "permissions": [{"role": team}],
            "tasks": [{"name": "t", "image": TEST_IMAGE, "queue": "other", "run": "echo hello"}],
        }
        with api.as_admin() as http:
            response = http.post("/jobs", json=job)
            assert response.status_code == 200, response.text
            job_id = response.json()["id"]
            done = poll_until(
                lambda: (body := http.get(f"/jobs/{job_id}").json())["state"] == "COMPLETED" and body,
                60,
                "the permitted job to complete",
            )
        yield World(api, job_id, done["execution"][0]["id"], member, stranger, team, spare)


def _wrong(w: World) -> Iterator[httpx.Client]:
    """Wrong credentials of every sort: a wrong password, an unknown user, a wrong key, a malformed header."""
    yield w.api.client(auth=(w.member[0], "not the password"))
    yield w.api.client(auth=("nobody-at-all", "whatever"))
    yield w.api.client(headers={"Authorization": "Bearer not-the-key"})
    yield w.api.client(headers={"Authorization": "Basic !!!"})


def _callers(w: World) -> Iterator[tuple[str, httpx.Client]]:
    yield "none", w.api.client()
    for client in _wrong(w):
        yield "wrong", client
    yield "stranger", w.api.client(auth=w.stranger)
    yield "member", w.api.client(auth=w.member)
    yield "admin", w.api.as_admin()


def test_every_route_has_a_case(world: World) -> None:
    missing = [route for route in app_routes(world.api) if route not in CASES]
    assert not missing, f"routes without an auth case (add them to CASES): {missing}"
    assert not set(CASES) - set(app_routes(world.api)), "cases for routes the app does not have"


@pytest.mark.parametrize("route", sorted(CASES))
def test_route_answers_each_caller_as_designed(world: World, route: str) -> None:
    if route not in app_routes(world.api):
        pytest.fail(f"{route} is not a route of the app")
    case = CASES[route]
    method = route.split(" ", 1)[0]
    for who, client in _callers(world):
        with client:
            path, kwargs = case.request(world)
            if case.stream:
                with client.stream(method, path, **kwargs) as response:
                    if response.status_code != 200:  # a refusal is a plain answer: read it
                        response.read()
            else:
                response = client.request(method, path, **kwargs)
        expected = EXPECTED[case.kind][who] or case.ok
        assert response.status_code == expected, f"{route} as {who}: {response.status_code} {response.text[:200]}"
        if expected == 401:
            assert "WWW-Authenticate" in response.headers
            assert response.json()["message"]
        if expected == 404:
            said = response.json()["message"] if not path.startswith("/ui/") else response.text
            assert any(m in said for m in ("job not found", "task not found", "scheduled job not found")), said


def test_lists_and_search_show_the_job_only_to_those_with_access(world: World) -> None:
    word = f"plans {world.api.tag}"
    for who, sees in (("stranger", False), ("member", True), ("admin", True)):
        auth = {"stranger": world.stranger, "member": world.member, "admin": world.api.admin}[who]
        with world.api.client(auth=auth) as http:
            for params in ({"size": "20"}, {"q": word}):
                page = http.get("/jobs", params=params).json()
                assert (world.job_id in {job["id"] for job in page["items"]}) is sees, (who, params, page)
            if not sees:
                assert http.get("/jobs", params={"q": word}).json()["totalItems"] == 0


def test_scheduled_jobs_and_their_instances_are_listed_only_to_those_with_access(world: World) -> None:
    name = f"every second {world.api.tag}"
    with world.api.as_admin() as admin:
        made = admin.post(
            "/scheduled-jobs", json={**_schedule_body(world), "name": name, "schedule": {"cron": "@every 1s"}}
        )
        assert made.status_code == 200, made.text
        scheduled_id = made.json()["id"]
        try:
            instance = poll_until(
                lambda: next(iter(admin.get("/jobs", params={"q": name}).json()["items"]), None),
                60,
                "an instance of the restricted scheduled job",
            )
            assert instance["schedule"]["id"] == scheduled_id
            for auth, sees in ((world.stranger, False), (world.member, True)):
                with world.api.client(auth=auth) as http:
                    listed = {item["id"] for item in http.get("/scheduled-jobs", params={"size": "20"}).json()["items"]}
                    assert (scheduled_id in listed) is sees, auth
                    assert http.get(f"/scheduled-jobs/{scheduled_id}").status_code == (200 if sees else 404)
                    instances = {job["id"] for job in http.get("/jobs", params={"q": name}).json()["items"]}
                    assert (instance["id"] in instances) is sees, auth
                    assert http.get(f"/jobs/{instance['id']}").status_code == (200 if sees else 404)
        finally:
            assert admin.delete(f"/scheduled-jobs/{scheduled_id}").status_code == 200
