"""A node's defaults for real: worker.limits.*, hostenv vars and image verification through one engine process
configured only by TORK_* variables; pruning of pulled images on the Docker runtime; sidecar logs in the task log."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from docker.errors import ImageNotFound

from tests.conftest import TEST_IMAGE
from tests.e2e.conftest import wait_for_job
from tests.integration.conftest import LiveEngine
from tests.integration.test_runtime_docker import assert_clean, run_job, task_log
from tests.integration.test_runtime_engines import engine_with
from tests.integration.test_runtime_registry import PASSWORD, USER, Registry, registry  # noqa: F401
from tests.polling import poll_until
from tork_ray.runtime.base import LABEL_SCOPE, RunRequest, Step
from tork_ray.runtime.docker import DockerRuntime
from tork_ray.runtime.docker_image_gc import ImageRecord
from tork_ray.settings import RuntimeSettings

CGROUP_LIMITS = """
      if [ -f /sys/fs/cgroup/cpu.max ]; then
        echo -n "$(cat /sys/fs/cgroup/cpu.max) $(cat /sys/fs/cgroup/memory.max)" > $TORK_OUTPUT
      else
        c=/sys/fs/cgroup
        quota=$(cat $c/cpu/cpu.cfs_quota_us)
        echo -n "$quota $(cat $c/cpu/cpu.cfs_period_us) $(cat $c/memory/memory.limit_in_bytes)" > $TORK_OUTPUT
      fi"""


def submit(http: httpx.Client, body: str) -> str:
    response = http.post("/jobs", content=body.encode(), headers={"Content-Type": "text/yaml"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_node_defaults_through_an_engine(tmp_path: Path, registry: Registry, docker_client: Any) -> None:  # noqa: F811
    """One engine whose node sets worker limits, a default timeout, hostenv vars and image verification."""
    image = registry.push("tork/verified", uuid.uuid4().hex[:8])
    namespace = f"tork_def_{uuid.uuid4().hex[:8]}"
    env = {
        "TORK_WORKER_LIMITS_CPUS": "0.5",
        "TORK_WORKER_LIMITS_MEMORY": "64m",
        "TORK_WORKER_LIMITS_TIMEOUT": "4s",
        "TORK_MIDDLEWARE_TASK_HOSTENV_VARS": "TORK_TEST_HOST_A,TORK_TEST_HOST_B:ALIASED,TORK_TEST_HOST_MISSING",
        "TORK_TEST_HOST_A": "a-from-host",
        "TORK_TEST_HOST_B": "b-from-host",
        "TORK_RUNTIME_DOCKER_IMAGE_VERIFY": "true",
    }
    with engine_with(tmp_path, env, namespace) as http:
        defaults = submit(
            http,
            f"""
name: node defaults
tasks:
  - name: defaulted
    image: {TEST_IMAGE}
    # Its own: three containers at half a CPU outlast the node's 4 s on a loaded machine (the default timeout
    # is the slow job's to show).
    timeout: 90s
    env:
      TORK_TEST_HOST_A: from-task
      TORK_TEST_HOST_MISSING: kept-from-task
    pre:
      - name: pre
        image: {TEST_IMAGE}
        run: echo "pre saw $TORK_TEST_HOST_A $ALIASED"
    post:
      - name: post
        image: {TEST_IMAGE}
        run: echo "post saw $TORK_TEST_HOST_A $ALIASED"
    run: |
      echo "main saw $TORK_TEST_HOST_A $ALIASED $TORK_TEST_HOST_MISSING ${{TORK_TEST_HOST_B:-unset}}"
{CGROUP_LIMITS}
""",
        )
        own = submit(
            http,
            f"""
name: own limits
tasks:
  - name: own
    image: {TEST_IMAGE}
    limits:
      cpus: "1"
      memory: 32m
    timeout: 30s
    run: |
      sleep 5
{CGROUP_LIMITS}
""",
        )
        slow = submit(http, f"name: slow\ntasks:\n  - name: slow\n    image: {TEST_IMAGE}\n    run: sleep 60\n")
        verified = submit(
            http,
            f"""
name: verified pull
tasks:
  - name: pulled
    image: {image}
    timeout: 90s
    registry:
      username: {USER}
      password: {PASSWORD}
    run: echo -n pulled > $TORK_OUTPUT
""",
        )
        job = wait_for_job(http, defaults, timeout=90)
        assert job["state"] == "COMPLETED", job
        task = job["execution"][0]
        assert task["result"].strip() == "50000 100000 67108864"
        log = "".join(p["contents"] for p in http.get(f"/tasks/{task['id']}/log", params={"size": 50}).json()["items"])
        # The host's value wins over the task's; one the host lacks leaves the task's; an unlisted one stays out.
        assert "main saw a-from-host b-from-host kept-from-task unset" in log, log
        assert "pre saw a-from-host b-from-host" in log and "post saw a-from-host b-from-host" in log, log

        job = wait_for_job(http, own, timeout=90)  # its own 30s timeout outlives the node's 4s default
        assert job["state"] == "COMPLETED", job
        assert job["execution"][0]["result"].strip() == "100000 100000 33554432"

        job = wait_for_job(http, slow, timeout=60)
        assert job["state"] == "FAILED", job
        assert job["execution"][0]["error"].startswith("context deadline exceeded"), job

        job = wait_for_job(http, verified, timeout=90)
        assert job["state"] == "COMPLETED", job
        assert job["execution"][0]["result"] == "pulled"
        assert image in ImageRecord().images()  # pulled here: a candidate for runtime.docker.image.ttl
    label = {"label": f"{LABEL_SCOPE}={namespace}"}
    # No container left, the verification container included.
    assert docker_client.containers.list(all=True, filters=label, ignore_removed=True) == []
    ImageRecord().forget([image])


def test_pulled_images_unused_past_the_ttl_are_pruned(tmp_path: Path, docker_client: Any) -> None:
    """Images the record says this node pulled go once unused past the TTL; an image that was already there
    (the test image), one a container uses, and one used lately stay."""
    tag = uuid.uuid4().hex[:8]
    old, busy, recent = (f"localhost/ttl-test:{name}-{tag}" for name in ("old", "busy", "recent"))
    for image in (old, busy, recent):
        docker_client.images.get(TEST_IMAGE).tag(image)
    holder = docker_client.containers.create(busy, ["true"])
    record = ImageRecord(tmp_path / "images.json")
    for image in (old, busy):
        record.mark_pulled(image, when=time.time() - 7200)
    record.mark_pulled(recent)
    runtime = DockerRuntime(RuntimeSettings(docker_image_ttl="1h"), client=docker_client, record=record)
    try:
        request = RunRequest(task_id=f"ttl-{tag}", job_id="j", scope="ttl-test", main=Step("main", TEST_IMAGE, "true"))
        runtime.run(request, lambda _: None, lambda _: None)  # the worker path starts the (due) prune

        def pruned() -> bool:
            try:
                docker_client.images.get(old)
                return False
            except ImageNotFound:
                return True

        poll_until(pruned, 30, f"{old} pruned")
        poll_until(lambda: old not in record.images(), 30, "record updated")
        assert docker_client.images.get(TEST_IMAGE)
        assert docker_client.images.get(busy) and docker_client.images.get(recent)
        assert set(record.images()) == {busy, recent}
    finally:
        holder.remove(force=True)
        for image in (old, busy, recent):
            with contextlib.suppress(ImageNotFound):
                docker_client.images.remove(image)


def test_sidecar_output_is_in_the_task_log(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: sidecar logs
tasks:
  - name: client
    image: {TEST_IMAGE}
    sidecars:
      - name: web
        image: {TEST_IMAGE}
        run: |
          echo "sidecar starting"
          echo "sidecar stderr" >&2
          mkdir -p /www && echo -n ok > /www/index.html
          httpd -f -p 8080 -h /www
        probe:
          path: /index.html
          port: 8080
          timeout: 20s
    run: wget -q -O $TORK_OUTPUT http://web:8080/index.html && echo main done
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    log = task_log(live_engine, job["execution"][0]["id"])
    assert "[web] sidecar starting\n" in log and "[web] sidecar stderr\n" in log, log
    assert "main done" in log
    assert_clean(docker_client, live_engine)
