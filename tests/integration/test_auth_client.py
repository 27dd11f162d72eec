"""tork_ray.Client and the tork-ray command with credentials, against the session engine with auth on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.auth_api import AuthApi, auth_api
from tork_ray import cli
from tork_ray.client import Client
from tork_ray.errors import Forbidden, NotFound, Unauthorized

JOB = f"""
name: client job
tasks:
  - name: hello
    image: {TEST_IMAGE}
    run: echo hello from the client
"""


@pytest.fixture(scope="module")
def api(live_engine: LiveEngine) -> Iterator[AuthApi]:
    with auth_api(live_engine) as api:
        yield api


@pytest.fixture(autouse=True)
def _no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TORK_USERNAME", "TORK_PASSWORD", "TORK_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_the_client_manages_roles_and_submits_as_its_user(api: AuthApi) -> None:
    admin = Client(api.url, username=api.admin[0], password=api.admin[1])
    user, password = api.new_user("sdk")
    slug = f"sdk-{api.tag}"
    assert admin.create_role(slug, "SDK users").slug == slug
    admin.add_user_role(user, slug)
    assert user in (admin.role(slug).users or [])
    assert slug in {role.slug for role in admin.roles()}
    client = Client(api.url, username=user, password=password)
    assert {role.slug for role in client.user_roles(user)} == {slug, "public"}
    with pytest.raises(Forbidden):
        client.create_role(f"nope-{api.tag}")
    job = client.submit(
        {"name": "sdk", "permissions": [{"role": slug}], "tasks": [{"name": "t", "image": TEST_IMAGE, "run": "true"}]}
    )
    assert job.created_by is not None and job.created_by.username == user
    assert client.get_job(job.id).id == job.id
    admin.remove_user_role(user, slug)
    admin.add_user_role(user, slug)
    with pytest.raises(Unauthorized):
        Client(api.url).list_jobs()
    wrong = Client(api.url, username=api.new_user("sdk-other")[0], password="wrong")
    with pytest.raises(Unauthorized):
        wrong.get_job(job.id)


def test_the_client_reads_credentials_from_the_environment(api: AuthApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORK_TOKEN", api.key)
    assert Client(api.url).list_jobs().items is not None
    monkeypatch.delenv("TORK_TOKEN")
    user, password = api.new_user("env")
    monkeypatch.setenv("TORK_USERNAME", user)
    monkeypatch.setenv("TORK_PASSWORD", password)
    job = Client(api.url).submit(JOB)
    assert job.created_by is not None and job.created_by.username == user
    # The live log stream carries the credentials too; another user gets a 404 for a job they may not see.
    stranger, stranger_password = api.new_user("env-stranger")
    tasks = [{"name": "t", "image": TEST_IMAGE, "run": "true"}]
    hidden = Client(api.url).submit({"name": "hidden", "permissions": [{"user": user}], "tasks": tasks})
    lines = list(Client(api.url).follow_job_log(job.id))
    assert any("hello from the client" in line for _, line in lines), lines
    with pytest.raises(NotFound):
        list(Client(api.url, username=stranger, password=stranger_password).follow_job_log(hidden.id))


def test_the_command_takes_credentials_from_options_or_variables(
    api: AuthApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(JOB)
    user, password = api.new_user("cli")
    assert cli.main(["--endpoint", api.url, "submit", str(path), "--json"]) == 1
    assert "authentication required" in capsys.readouterr().err
    assert cli.main(["--endpoint", api.url, "--user", user, "--password", password, "submit", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["createdBy"]["username"] == user
    assert cli.main(["--endpoint", api.url, "--token", api.key, "submit", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["createdBy"]["username"] == "guest"
    monkeypatch.setenv("TORK_USERNAME", user)
    monkeypatch.setenv("TORK_PASSWORD", password)
    assert cli.main(["--endpoint", api.url, "submit", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["createdBy"]["username"] == user
    assert cli.main(["--endpoint", api.url, "--password", "wrong", "submit", str(path), "--json"]) == 1
    assert "invalid username or password" in capsys.readouterr().err
    assert cli.main(["--endpoint", api.url, "health"]) == 0  # /health stays open
