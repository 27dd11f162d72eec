"""Private registries for real: a local registry server (Debian's docker-registry) with htpasswd auth on
loopback; images pulled only when absent, once however many tasks want them, with the task's credentials or a
Docker config file."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE, require
from tests.integration.conftest import LiveEngine, free_port
from tests.integration.test_runtime_docker import assert_clean, task_log
from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import RunRequest, Step
from tork_ray.runtime.docker import DockerRuntime
from tork_ray.settings import RuntimeSettings

USER, PASSWORD = "tork", "s3cret-pw"


@dataclass
class Registry:
    host: str
    log_path: Path
    docker: Any

    def push(self, repository: str, tag: str, extra_layer_mb: int = 0) -> str:
        """Pushes the test image (with a layer of random bytes on top, if asked) as <host>/<repository>:<tag>
        and removes it locally again."""
        image = f"{self.host}/{repository}"
        if extra_layer_mb:
            command = ["sh", "-c", f"head -c {extra_layer_mb}m /dev/urandom > /blob"]
            builder = self.docker.containers.run(TEST_IMAGE, command, detach=True)
            try:
                assert builder.wait(timeout=60)["StatusCode"] == 0
                builder.commit(image, tag)
            finally:
                builder.remove(force=True)
        else:
            self.docker.images.get(TEST_IMAGE).tag(image, tag)
        auth = {"username": USER, "password": PASSWORD}
        for line in self.docker.images.push(image, tag, stream=True, decode=True, auth_config=auth):
            assert "error" not in line, line
        self.docker.images.remove(f"{image}:{tag}")
        return f"{image}:{tag}"

    def manifest_requests(self, reference: str) -> int:
        """How many pulls of `reference` the registry served (each pull starts with one HEAD of the tag)."""
        repository, _, tag = reference.removeprefix(self.host + "/").rpartition(":")
        pattern = re.compile(rf'"HEAD /v2/{re.escape(repository)}/manifests/{re.escape(tag)} HTTP/1.1" 200')
        return len(pattern.findall(self.log_path.read_text(errors="replace")))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Registry]:
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    require(bool(binary and htpasswd), "docker-registry and htpasswd (scripts/ensure-runtimes.sh)")
    root = tmp_path_factory.mktemp("registry")
    users = subprocess.run([str(htpasswd), "-Bbn", USER, PASSWORD], capture_output=True, check=True, text=True)
    (root / "htpasswd").write_text(users.stdout)
    port = free_port()
    (root / "config.yml").write_text(
        f"""
version: 0.1
log: {{level: info, accesslog: {{disabled: false}}}}
storage: {{filesystem: {{rootdirectory: {root}/data}}}}
http: {{addr: "127.0.0.1:{port}"}}
auth: {{htpasswd: {{realm: tork-test, path: {root}/htpasswd}}}}
"""
    )
    log_path = root / "registry.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen([str(binary), "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", log_path, docker_client)
    finally:
        server.terminate()
        server.wait(timeout=10)
        for image in docker_client.images.list():
            for tag in image.tags:
                if tag.startswith(f"127.0.0.1:{port}/"):
                    docker_client.images.remove(tag, force=True)


def job(image: str, *, credentials: bool = True, queue: str = "default") -> str:
    registry = f"\n    registry:\n      username: {USER}\n      password: {PASSWORD}" if credentials else ""
    return f"""
name: private image
tasks:
  - name: private
    image: {image}
    queue: {queue}{registry}
    run: echo -n pulled > $TORK_OUTPUT
"""


def test_private_image_pulled_with_the_tasks_credentials(
    live_engine: LiveEngine, registry: Registry, docker_client: Any
) -> None:
    image = registry.push("tork/private", "creds")
    done = live_engine.wait_for(live_engine.submit(job(image))["id"])
    assert done["state"] == "COMPLETED", done
    assert done["execution"][0]["result"] == "pulled"
    assert registry.manifest_requests(image) == 1
    assert docker_client.images.get(image)
    # Present now: a second task does not pull again.
    again = live_engine.wait_for(live_engine.submit(job(image))["id"])
    assert again["state"] == "COMPLETED"
    assert registry.manifest_requests(image) == 1
    assert_clean(docker_client, live_engine)


def test_without_credentials_the_pull_fails_clearly(live_engine: LiveEngine, registry: Registry) -> None:
    image = registry.push("tork/private", "nocreds")
    done = live_engine.wait_for(live_engine.submit(job(image, credentials=False))["id"])
    assert done["state"] == "FAILED"
    error = done["execution"][0]["error"]
    assert error.startswith(f"error pulling image {image}:"), error
    assert "no basic auth credentials" in error


def test_concurrent_tasks_pull_a_new_tag_once(live_engine: LiveEngine, registry: Registry, docker_client: Any) -> None:
    """Three tasks at once (two slots of `default`, one of `other`), one image nobody has yet: one pull.
    The image has a 40 MB layer of its own so that a pull takes long enough for the others to want it too."""
    image = registry.push("tork/private", "herd", extra_layer_mb=40)
    tasks = "".join(
        f"""
      - name: wants {i}
        image: {image}
        queue: {queue}
        registry: {{username: {USER}, password: {PASSWORD}}}
        run: echo -n {i} > $TORK_OUTPUT
"""
        for i, queue in enumerate(("default", "default", "other"))
    )
    body = f"name: thundering herd\ntasks:\n  - name: all at once\n    parallel:\n      tasks:{tasks}"
    done = live_engine.wait_for(live_engine.submit(body)["id"])
    assert done["state"] == "COMPLETED", done
    children = [t for t in done["execution"] if t.get("parentId")]
    assert sorted(t["result"] for t in children) == ["0", "1", "2"]
    pulled = [t for t in children if f"pulling image {image}" in task_log(live_engine, t["id"])]
    assert len(pulled) == 1, "each task pulled for itself: the pull lock did not hold"
    assert registry.manifest_requests(image) == 1
    assert_clean(docker_client, live_engine)


def test_credentials_from_a_docker_config_file(registry: Registry, tmp_path: Path, docker_client: Any) -> None:
    image = registry.push("tork/private", "config-file")
    config = tmp_path / "config.json"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
    request = RunRequest(
        task_id="config-file-task",
        job_id="j",
        scope="registry-test",
        main=Step(name="m", image=image, run="echo -n ok > $TORK_OUTPUT"),
    )
    runtime = DockerRuntime(RuntimeSettings(docker_config=str(config)), client=docker_client)
    assert runtime.run(request, lambda _: None, lambda _: None) == "ok"
    assert runtime.images.pulls == 1

    # Removed behind the runtime's back, while it still remembers the image as present: pulled again.
    docker_client.images.remove(image)
    assert runtime.run(request, lambda _: None, lambda _: None) == "ok"
    assert runtime.images.pulls == 2

    docker_client.images.remove(image)
    without = DockerRuntime(RuntimeSettings(docker_config=str(tmp_path / "missing.json")), client=docker_client)
    with pytest.raises(RuntimeFailure, match=r"runtime\.docker\.config: .*missing\.json is not a file"):
        without.run(request, lambda _: None, lambda _: None)
