"""Engines whose node settings differ from the session engine's, each in its own process (one Ray per process):
the shell runtime, the Podman runtime, and Docker with bind mounts allowed. Each is the engine `make run`
starts, configured only by TORK_* variables, so these also show that the settings reach the workers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE, require
from tests.e2e.conftest import EngineProcess, wait_for_job
from tests.integration.test_runtime_podman import podman_ready
from tork_ray.runtime.base import LABEL_SCOPE, LABEL_TASK


@contextmanager
def engine_with(tmp_path: Path, env: dict[str, str], namespace: str = "") -> Iterator[httpx.Client]:
    engine = EngineProcess(tmp_path, namespace or f"tork_rt_{uuid.uuid4().hex[:8]}")
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # EngineProcess passes its own environment on to the engine
    try:
        engine.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        with engine.http() as http:
            yield http
    finally:
        if engine.process is not None and engine.process.poll() is None:
            engine.stop()


def run(http: httpx.Client, body: str) -> dict[str, Any]:
    response = http.post("/jobs", content=body.encode(), headers={"Content-Type": "text/yaml"})
    assert response.status_code == 200, response.text
    return wait_for_job(http, response.json()["id"], timeout=90)


def test_shell_runtime_engine(shell_engine: httpx.Client) -> None:
    # The shared shell engine has HOST_ONLY_SECRET in its environment (tests/integration/conftest.py).
    job = run(
        shell_engine,
        """
name: shell job
tasks:
  - name: script
    env:
      GREETING: hello
    files:
      data.txt: from files
    run: |
      echo -n "$GREETING|$(cat data.txt)|${HOST_ONLY_SECRET:-unset}|$(basename $(dirname $TORK_OUTPUT))" > $TORK_OUTPUT
""",
    )
    assert job["state"] == "COMPLETED", job
    greeting, data, secret, directory = job["execution"][0]["result"].split("|")
    assert (greeting, data, secret) == ("hello", "from files", "unset")
    # The step's own temp dir: tork-<task id>-main-<random>.
    assert directory.startswith(f"tork-{job['execution'][0]['id']}-main-"), directory

    refused = run(shell_engine, f"name: wrong\ntasks:\n  - name: image\n    image: {TEST_IMAGE}\n    run: echo hi\n")
    assert refused["state"] == "FAILED"
    assert refused["execution"][0]["error"] == "image is not supported on shell runtime"


def test_podman_runtime_engine(tmp_path: Path) -> None:
    require(podman_ready(), f"podman with the test image {TEST_IMAGE} (scripts/ensure-runtimes.sh)")
    shared = tmp_path / "shared"
    env = {"TORK_RUNTIME_TYPE": "podman", "TORK_MOUNTS_BIND_ALLOWED": "true", "TORK_MOUNTS_BIND_SOURCES": str(shared)}
    with engine_with(tmp_path, env) as http:
        job = run(
            http,
            f"""
name: podman job
tasks:
  - name: contained
    image: {TEST_IMAGE}
    env:
      GREETING: hello
    files:
      data.txt: from files
    limits:
      memory: 64m
    mounts:
      - type: volume
        target: /data
      - type: bind
        source: {shared}
        target: /shared
    run: |
      echo -n written-in-podman > /shared/out.txt
      echo -n "$GREETING|$(cat data.txt)|$(pwd)|$TORK_OUTPUT" > $TORK_OUTPUT
""",
        )
        assert job["state"] == "COMPLETED", job
        assert job["execution"][0]["result"] == "hello|from files|/tork/workdir|/tork/output"
        assert (shared / "out.txt").read_text() == "written-in-podman"

        refused = run(
            http,
            f"""
name: sidecar on podman
tasks:
  - name: with sidecar
    image: {TEST_IMAGE}
    sidecars:
      - name: web
        image: {TEST_IMAGE}
    run: echo hi
""",
        )
        assert refused["execution"][0]["error"] == "sidecars is not supported on podman runtime"


@pytest.fixture
def orphans(docker_client: Any) -> Iterator[dict[str, str]]:
    """A container, volume and network left by a 'crashed' engine of the scope the next engine will have."""
    scope = f"tork_rt_{uuid.uuid4().hex[:8]}"
    labels = {LABEL_SCOPE: scope, LABEL_TASK: "lost-task"}
    container = docker_client.containers.run(TEST_IMAGE, ["sleep", "300"], labels=labels, detach=True)
    volume = docker_client.volumes.create(labels=labels)
    network = docker_client.networks.create(f"tork-orphan-{scope}", labels=labels)
    yield {"scope": scope}
    for item in (container, volume, network):
        with contextlib.suppress(Exception):  # removed by the engine, as it should be
            item.remove(force=True) if item is not network else item.remove()


def test_docker_engine_with_binds_allowed_and_orphans_removed_at_start(
    tmp_path: Path, docker_client: Any, orphans: dict[str, str]
) -> None:
    allowed = tmp_path / "in" / "deeper"
    env = {"TORK_MOUNTS_BIND_ALLOWED": "true", "TORK_MOUNTS_BIND_SOURCES": f"{allowed},/var/run/docker.sock"}
    label = {"label": f"{LABEL_SCOPE}={orphans['scope']}"}
    assert docker_client.containers.list(all=True, filters=label, ignore_removed=True)
    with engine_with(tmp_path, env, namespace=orphans["scope"]) as http:
        # Recovery at start removed what the crashed engine of this scope had left: all three kinds.
        assert docker_client.containers.list(all=True, filters=label, ignore_removed=True) == []
        assert docker_client.volumes.list(filters=label) == []
        assert docker_client.networks.list(filters=label) == []
        job = run(
            http,
            f"""
name: bind
tasks:
  - name: bound
    image: {TEST_IMAGE}
    mounts:
      - type: bind
        source: {allowed}
        target: /host
    run: echo -n from-the-container > /host/out.txt; echo -n done > $TORK_OUTPUT
""",
        )
        assert job["state"] == "COMPLETED", job
        assert (allowed / "out.txt").read_text() == "from-the-container"  # the source was created for it

        for source, error in (
            ("/var/run/docker.sock", "would expose the container engine socket /var/run/docker.sock"),
            (str(tmp_path), "is not in the allowed sources (mounts.bind.sources)"),
        ):
            body = f"name: b\ntasks:\n  - name: b\n    image: {TEST_IMAGE}\n    mounts:\n      - type: bind\n"
            body += f"        source: {source}\n        target: /x\n    run: ls /x\n"
            refused = run(http, body)
            assert refused["state"] == "FAILED"
            assert error in refused["execution"][0]["error"]
