"""The Docker runtime through the whole engine: what a task's container sees, what the API shows, and that
nothing of ours is left in Docker whatever happens to the task."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE
from tests.integration.conftest import LiveEngine, free_port
from tests.polling import poll_until

IMAGE = TEST_IMAGE


def leftovers(docker_client: Any, engine: LiveEngine) -> dict[str, list[str]]:
    """Our containers, volumes and networks (by the engine's scope label): must all be empty between tasks."""
    label = {"label": f"tork_ray.scope={engine.settings.ray.namespace}"}
    return {
        "containers": [c.name for c in docker_client.containers.list(all=True, filters=label, ignore_removed=True)],
        "volumes": [v.name for v in docker_client.volumes.list(filters=label)],
        "networks": [n.name for n in docker_client.networks.list(filters=label)],
    }


def nothing_left(docker_client: Any, engine: LiveEngine) -> bool:
    return not any(leftovers(docker_client, engine).values())


def assert_clean(docker_client: Any, engine: LiveEngine) -> None:
    poll_until(lambda: nothing_left(docker_client, engine), 30, "no leftovers")


def run_job(engine: LiveEngine, body: str, timeout: float = 90) -> dict[str, Any]:
    return engine.wait_for(engine.submit(body)["id"], timeout=timeout)


def task_log(engine: LiveEngine, task_id: str) -> str:
    page = engine.http.get(f"/tasks/{task_id}/log", params={"size": 100}).json()
    return "".join(part["contents"] for part in page.get("items", []))


def running_task(engine: LiveEngine, job_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        job = engine.http.get(f"/jobs/{job_id}").json()
        return next((t for t in job.get("execution", []) if t["state"] == "RUNNING"), None)

    return poll_until(find, 60, "a RUNNING task")


def test_task_sees_its_files_env_workdir_and_command(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: what a task sees
tasks:
  - name: files and env
    image: {IMAGE}
    env:
      GREETING: hello there
    files:
      hello.txt: from files
    run: |
      echo "pwd=$(pwd)" >> $TORK_OUTPUT
      echo "greeting=$GREETING" >> $TORK_OUTPUT
      echo "output=$TORK_OUTPUT progress=$TORK_PROGRESS" >> $TORK_OUTPUT
      echo "file=$(cat hello.txt) mode=$(stat -c %a hello.txt)" >> $TORK_OUTPUT
      echo "script=$(stat -c %a /tork/entrypoint)" >> $TORK_OUTPUT
  - name: custom workdir
    image: {IMAGE}
    workdir: /app/src
    files:
      conf.ini: "[x]"
    run: echo -n "$(pwd):$(cat conf.ini)" > $TORK_OUTPUT
  - name: cmd only
    image: {IMAGE}
    cmd: ["sh", "-c", "echo -n from-cmd > $TORK_OUTPUT"]
  - name: custom entrypoint
    image: {IMAGE}
    entrypoint: ["/bin/sh", "-c"]
    run: echo -n "from-run $0" > $TORK_OUTPUT
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    first, workdir, cmd, entrypoint = (task["result"] for task in job["execution"])
    assert first.splitlines() == [
        "pwd=/tork/workdir",
        "greeting=hello there",
        "output=/tork/stdout progress=/tork/progress",
        "file=from files mode=444",
        "script=555",
    ]
    assert workdir == "/app/src:[x]"
    assert cmd == "from-cmd"
    assert entrypoint.startswith("from-run")
    assert_clean(docker_client, live_engine)


def test_limits_reach_the_cgroup(live_engine: LiveEngine) -> None:
    body = f"""
name: limits
tasks:
  - name: limited
    image: {IMAGE}
    limits:
      cpus: "0.5"
      memory: 64m
    run: |
      if [ -f /sys/fs/cgroup/cpu.max ]; then
        echo -n "$(cat /sys/fs/cgroup/cpu.max) $(cat /sys/fs/cgroup/memory.max)" > $TORK_OUTPUT
      else
        c=/sys/fs/cgroup
        quota=$(cat $c/cpu/cpu.cfs_quota_us)
        echo -n "$quota $(cat $c/cpu/cpu.cfs_period_us) $(cat $c/memory/memory.limit_in_bytes)" > $TORK_OUTPUT
      fi
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    assert job["execution"][0]["result"] in ("50000 100000 67108864", "50000 100000 67108864\n")


def test_volume_and_tmpfs_mounts_shared_by_pre_and_post(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: mounts
tasks:
  - name: mounted
    image: {IMAGE}
    mounts:
      - type: volume
        target: /data
      - type: tmpfs
        target: /scratch
    pre:
      - name: prepare
        image: {IMAGE}
        run: echo -n from-pre > /data/pre.txt
    post:
      - name: check
        image: {IMAGE}
        run: echo "post saw $(cat /data/main.txt)"
    run: |
      echo -n from-main > /data/main.txt
      echo -n "$(cat /data/pre.txt) $(grep ' /scratch ' /proc/mounts | cut -d' ' -f3)" > $TORK_OUTPUT
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    task = job["execution"][0]
    assert task["result"] == "from-pre tmpfs"
    assert "post saw from-main" in task_log(live_engine, task["id"])
    assert_clean(docker_client, live_engine)


@pytest.mark.parametrize("source", ["/tmp/tork-bind-test", "/var/run/docker.sock"])
def test_bind_mounts_are_refused_by_default(live_engine: LiveEngine, docker_client: Any, source: str) -> None:
    body = f"""
name: bind refused
tasks:
  - name: bind
    image: {IMAGE}
    mounts:
      - type: bind
        source: {source}
        target: /host
    run: ls /host
"""
    job = run_job(live_engine, body)
    assert job["state"] == "FAILED"
    assert job["execution"][0]["error"] == (
        "mounts[0]: bind mounts are not allowed on this node (setting mounts.bind.allowed)"
    )
    assert not os.path.exists("/tmp/tork-bind-test")
    assert_clean(docker_client, live_engine)


def test_not_privileged_and_no_docker_socket(live_engine: LiveEngine) -> None:
    body = f"""
name: unprivileged
tasks:
  - name: caps
    image: {IMAGE}
    run: |
      socket=$(test -e /var/run/docker.sock && echo sock || echo nosock)
      echo -n "$(grep CapEff /proc/self/status | cut -f2) $socket" > $TORK_OUTPUT
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    caps, socket = job["execution"][0]["result"].split()
    assert not int(caps, 16) & (1 << 21), "CAP_SYS_ADMIN: the container is privileged"
    assert socket == "nosock"


@pytest.fixture
def service_network(docker_client: Any) -> Iterator[str]:
    """A user network with a web server on it, as a task's `networks` would name."""
    name = f"tork-it-{uuid.uuid4().hex[:8]}"
    network = docker_client.networks.create(name, driver="bridge")
    server = docker_client.containers.run(
        IMAGE,
        ["sh", "-c", "mkdir -p /www && echo -n on-the-network > /www/index.html && httpd -f -p 8080 -h /www"],
        detach=True,
        network=name,
        name=f"{name}-svc",
    )
    try:
        yield name
    finally:
        server.remove(force=True)
        network.remove()


def test_task_joins_a_named_network(live_engine: LiveEngine, docker_client: Any, service_network: str) -> None:
    body = f"""
name: networks
tasks:
  - name: client
    image: {IMAGE}
    networks: [{service_network}]
    run: wget -q -O $TORK_OUTPUT http://{service_network}-svc:8080/index.html
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    assert job["execution"][0]["result"] == "on-the-network"
    assert_clean(docker_client, live_engine)


def test_sidecar_is_reached_by_its_slug_after_its_probe(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: sidecars
tasks:
  - name: client
    image: {IMAGE}
    sidecars:
      - name: Web Server
        image: {IMAGE}
        run: |
          sleep 1
          mkdir -p /www && echo -n served-by-sidecar > /www/index.html
          httpd -f -p 8080 -h /www
        probe:
          path: /index.html
          port: 8080
          timeout: 20s
    run: wget -q -O $TORK_OUTPUT http://web-server:8080/index.html
"""
    job = run_job(live_engine, body)
    assert job["state"] == "COMPLETED", job
    assert job["execution"][0]["result"] == "served-by-sidecar"
    assert_clean(docker_client, live_engine)


def test_probe_timeout_fails_the_task(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: probe timeout
tasks:
  - name: client
    image: {IMAGE}
    sidecars:
      - name: silent
        image: {IMAGE}
        run: sleep 300
        probe:
          path: /
          port: 8080
          timeout: 2s
    run: echo never
"""
    job = run_job(live_engine, body)
    assert job["state"] == "FAILED"
    assert job["execution"][0]["error"] == "probe timed out after 2s"
    assert_clean(docker_client, live_engine)


def test_gpus_reach_docker_as_a_device_request(live_engine: LiveEngine, docker_client: Any) -> None:
    """No GPU here: Docker refuses the device request — which shows that it got one."""
    body = f"""
name: gpus
tasks:
  - name: wants a gpu
    image: {IMAGE}
    gpus: all
    run: echo hi
"""
    job = run_job(live_engine, body)
    assert job["state"] == "FAILED"
    error = job["execution"][0]["error"]
    assert error.startswith("cannot start container: could not select device driver"), error
    assert "gpu" in error
    assert_clean(docker_client, live_engine)


def test_an_unreachable_registry_fails_the_task_clearly(live_engine: LiveEngine, docker_client: Any) -> None:
    image = f"127.0.0.1:{free_port()}/tork/absent:1"
    body = f"""
name: unreachable
tasks:
  - name: pull
    image: {image}
    registry:
      username: someone
      password: secret-password
    run: echo never
"""
    job = run_job(live_engine, body)
    assert job["state"] == "FAILED"
    error = job["execution"][0]["error"]
    assert error.startswith(f"error pulling image {image}:"), error
    assert "connection refused" in error
    assert "secret-password" not in error
    assert_clean(docker_client, live_engine)
