"""Issue 9, point 1: no name from a job reaches the worker's host outside the task's directory.

Submit refuses hostile `files` names (400 naming `files` and the name, nothing stored), on the Docker engine of
the session and on a shell-runtime engine; the runtimes refuse them again on their own (as if they came from
elsewhere than a validated submit); and what a task plants in its own directory (a symlink where the next step's
directory or its output file goes) carries no write or read outside it.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE
from tests.e2e.conftest import wait_for_job
from tests.integration.conftest import LiveEngine
from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import RunRequest, Step
from tork_ray.runtime.docker import DockerRuntime
from tork_ray.runtime.docker_image_gc import ImageRecord
from tork_ray.runtime.shell import ShellRuntime
from tork_ray.settings import RuntimeSettings


def hostile_names(outside: Path) -> dict[str, str]:
    """The issue's two names, aimed at a directory of the test instead of /tmp, plus the other bad kinds."""
    return {
        str(outside / "abs"): "a",
        "../../../../../../../../.." + str(outside / "up"): "b",
        "": "c",
        "nul\x00name": "d",
    }


def submit(http: httpx.Client, files: dict[str, str], content_type: str) -> httpx.Response:
    doc = {"name": "hostile files", "tasks": [{"name": "t", "run": "true", "files": files}]}
    if content_type == "application/json":
        body = json.dumps(doc).encode()
    else:  # YAML: the same names as double-quoted scalars (JSON strings are valid YAML ones)
        pairs = "".join(f"      {json.dumps(k)}: {json.dumps(v)}\n" for k, v in files.items())
        body = f"name: hostile files\ntasks:\n  - name: t\n    run: 'true'\n    files:\n{pairs}".encode()
    return http.post("/jobs", content=body, headers={"Content-Type": content_type})


def assert_refused(response: httpx.Response, files: dict[str, str]) -> None:
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    for name in files:
        assert f"tasks[0].files: file name {json.dumps(name)}" in message, message


@pytest.mark.parametrize("content_type", ["application/json", "text/yaml"])
def test_hostile_file_names_are_refused_at_submit(live_engine: LiveEngine, tmp_path: Path, content_type: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    files = hostile_names(outside)
    before = live_engine.store.list_jobs(1, 1)[1]
    assert_refused(submit(live_engine.http, files, content_type), files)
    assert live_engine.store.list_jobs(1, 1)[1] == before
    assert list(outside.iterdir()) == []


def test_shell_engine_refuses_them_and_a_planted_symlink_leads_nowhere(
    tmp_path: Path, shell_engine: httpx.Client
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    files = hostile_names(outside)
    http = shell_engine  # limits.depth is 1 there
    assert_refused(submit(http, files, "application/json"), files)
    # The engine's own limits.* settings reach submit validation.
    nested = {"name": "p", "parallel": {"tasks": [{"name": "q", "parallel": {"tasks": [{"name": "leaf"}]}}]}}
    deep = http.post("/jobs", json={"name": "deep", "tasks": [nested]})
    assert deep.status_code == 400, deep.text
    assert deep.json()["message"] == (
        "tasks[0].parallel.tasks[0].parallel.tasks[0] is nested 2 levels deep in parallel/each/subjob: "
        "limits.depth is 1"
    )
    # A pre step plants symlinks to a host directory where the main step's directory and files would be, were
    # the steps to share a directory: each step has a fresh temp dir of its own, so they lead nowhere.
    body = f"""
name: planted symlink
tasks:
  - name: main
    pre:
      - name: plant
        run: ln -s {outside} main; ln -s {outside}/data.txt data.txt; ln -s {outside} ../main-planted
    files:
      data.txt: written where?
    run: echo -n "$(cat data.txt)" > $TORK_OUTPUT
"""
    try:
        response = http.post("/jobs", content=body.encode(), headers={"Content-Type": "text/yaml"})
        assert response.status_code == 200, response.text
        job = wait_for_job(http, response.json()["id"], timeout=90)
        assert job["state"] == "COMPLETED", job
        assert job["execution"][0]["result"] == "written where?"
        assert list(outside.iterdir()) == []
    finally:
        Path(tempfile.gettempdir(), "main-planted").unlink(missing_ok=True)


def docker_request(files: dict[str, str], run: str = "true", workdir: str = "") -> RunRequest:
    step = Step(name="main", image=TEST_IMAGE, run=run, files=files)
    return RunRequest(
        task_id=f"paths-{uuid.uuid4().hex[:8]}", job_id="j", scope="paths-test", main=step, workdir=workdir
    )


@pytest.mark.parametrize("workdir", ["", "/app"], ids=["files-on-host", "files-copied-in"])
def test_runtimes_refuse_hostile_names_on_their_own(docker_client: Any, tmp_path: Path, workdir: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    docker = DockerRuntime(RuntimeSettings(), client=docker_client, record=ImageRecord(tmp_path / "images.json"))
    shell = ShellRuntime(RuntimeSettings(type="shell"))
    for name, content in hostile_names(outside).items():
        with pytest.raises(RuntimeFailure, match=r"^files: file name"):
            docker.run(docker_request({name: content}, workdir=workdir), lambda _: None, lambda _: None)
        if not workdir:
            step = Step(name="main", run="true", files={name: content})
            with pytest.raises(RuntimeFailure, match=r"^files: file name"):
                shell.run(RunRequest(task_id="paths-shell", job_id="j", main=step), lambda _: None, lambda _: None)
    assert list(outside.iterdir()) == []


def test_a_container_cannot_read_a_host_file_through_its_output(live_engine: LiveEngine, tmp_path: Path) -> None:
    secret = tmp_path / "host-only"
    secret.write_text("HOST-ONLY-7d1e")
    secret.chmod(0o644)
    body = f"""
name: output symlink
tasks:
  - name: plant
    image: {TEST_IMAGE}
    run: rm -f /tork/stdout && ln -s {secret} /tork/stdout
"""
    job = live_engine.wait_for(live_engine.submit(body)["id"], timeout=90)
    assert job["state"] == "COMPLETED", job
    assert "HOST-ONLY" not in json.dumps(job)
