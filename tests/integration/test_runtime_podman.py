"""The Podman runtime with the real `podman` (rootful, runc): what a container sees, failures, and clean-up."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE, require
from tests.integration.test_runtime_shell import interrupt_once, sigint_handled  # noqa: F401
from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Mount, RunRequest, Sidecar, Step
from tork_ray.runtime.podman import PodmanRuntime
from tork_ray.settings import RuntimeSettings


def podman_ready() -> bool:
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", TEST_IMAGE], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def scope() -> Iterator[str]:
    require(podman_ready(), f"podman with the test image {TEST_IMAGE} (scripts/ensure-runtimes.sh)")
    name = f"podman-test-{uuid.uuid4().hex[:8]}"
    yield name
    PodmanRuntime().remove_orphans(name)


def leftovers(scope: str) -> list[str]:
    label = f"label=tork_ray.scope={scope}"
    containers = subprocess.run(["podman", "ps", "-aq", "--filter", label], capture_output=True, text=True)
    volumes = subprocess.run(["podman", "volume", "ls", "-q", "--filter", label], capture_output=True, text=True)
    return containers.stdout.split() + volumes.stdout.split()


def request(scope: str, run: str, **fields: Any) -> RunRequest:
    main = Step(
        name="main",
        image=TEST_IMAGE,
        run=run,
        env=fields.pop("env", {}),
        files=fields.pop("files", {}),
    )
    return RunRequest(task_id=uuid.uuid4().hex, job_id="job", scope=scope, main=main, **fields)


def run(
    req: RunRequest, runtime: PodmanRuntime | None = None, cancelled: Callable[[], bool] | None = None
) -> tuple[str, str]:
    logs: list[str] = []
    result = (runtime or PodmanRuntime()).run(req, logs.append, lambda _: None, cancelled)
    return result, "".join(logs)


def test_files_env_workdir_and_output(scope: str) -> None:
    script = """
echo "pwd=$(pwd) greeting=$GREETING file=$(cat a.txt)"
echo -n "$TORK_OUTPUT $TORK_PROGRESS" > $TORK_OUTPUT
"""
    result, log = run(request(scope, script, env={"GREETING": "hi"}, files={"a.txt": "A"}))
    assert result == "/tork/output /tork/progress"
    assert "pwd=/tork/workdir greeting=hi file=A" in log
    script = 'echo -n "$(pwd) $(cat b.txt)" > $TORK_OUTPUT'
    custom, _ = run(request(scope, script, files={"b.txt": "B"}, workdir="/app"))
    assert custom == "/app B"
    assert leftovers(scope) == []


def test_volume_tmpfs_limits_and_pre_post(scope: str) -> None:
    script = """
echo -n main > /data/main.txt
c=/sys/fs/cgroup
limit=$(cat $c/memory.max 2>/dev/null || cat $c/memory/memory.limit_in_bytes)
echo -n "$(cat /data/pre.txt) $(grep ' /scratch ' /proc/mounts | cut -d' ' -f3) $limit" > $TORK_OUTPUT
"""
    req = request(
        scope,
        script,
        memory_bytes=64 * 2**20,
        cpus_nano=500_000_000,
        mounts=(Mount("volume", "/data"), Mount("tmpfs", "/scratch")),
        pre=(Step(name="pre", image=TEST_IMAGE, run="echo -n pre > /data/pre.txt"),),
        post=(Step(name="post", image=TEST_IMAGE, run='echo "post saw $(cat /data/main.txt)"'),),
    )
    result, log = run(req)
    assert result == f"pre tmpfs {64 * 2**20}"
    assert "post saw main" in log
    assert leftovers(scope) == []


def test_non_zero_exit_and_out_of_memory(scope: str) -> None:
    with pytest.raises(RuntimeFailure) as failed:
        run(request(scope, "echo 'last words'; exit 3"))
    assert failed.value.message == "container exited with code 3: last words"
    with pytest.raises(RuntimeFailure) as oom:
        run(request(scope, "head -c 200m /dev/zero | tail", memory_bytes=20 * 2**20))
    assert oom.value.message.startswith("out of memory"), oom.value.message
    assert leftovers(scope) == []


def test_timeout_removes_everything(scope: str) -> None:
    began = time.monotonic()
    with pytest.raises(RuntimeFailure, match="context deadline exceeded"):
        run(request(scope, "sleep 300", timeout_seconds=2.0, mounts=(Mount("volume", "/data"),)))
    print(f"a 2s timeout ended the task after {time.monotonic() - began:.1f}s")
    assert leftovers(scope) == []


def _started_sleeper(scope: str, tmp_path: Path) -> RunRequest:
    """A task that marks, in a host directory, that its container runs, then outlasts any cancel."""
    return request(
        scope,
        "touch /signal/started; sleep 300",
        mounts=(Mount("volume", "/data"), Mount("bind", "/signal", str(tmp_path))),
    )


def test_cancel_flag_removes_everything(scope: str, tmp_path: Path) -> None:
    """The worker's own cancel path (its waits read the cancel flag): no signal involved."""
    started = tmp_path / "started"
    runtime = PodmanRuntime(RuntimeSettings(type="podman", bind_allowed=True))
    with pytest.raises(KeyboardInterrupt):
        run(_started_sleeper(scope, tmp_path), runtime, cancelled=started.exists)
    assert started.exists()
    assert leftovers(scope) == []


def test_cancel_interrupt_removes_everything(scope: str, tmp_path: Path, sigint_handled: None) -> None:  # noqa: F811
    started = tmp_path / "started"
    interrupt_once(started.exists)
    with pytest.raises(KeyboardInterrupt):
        run(_started_sleeper(scope, tmp_path), PodmanRuntime(RuntimeSettings(type="podman", bind_allowed=True)))
    assert started.exists()
    assert leftovers(scope) == []


def test_unsupported_fields_fail_clearly(scope: str) -> None:
    req = request(scope, "true", sidecars=(Sidecar(Step(name="web", image=TEST_IMAGE)),))
    with pytest.raises(RuntimeFailure, match="sidecars is not supported on podman runtime"):
        run(req)
    with pytest.raises(RuntimeFailure, match="bind mounts are not allowed"):
        run(request(scope, "true", mounts=(Mount("bind", "/x", "/tmp"),)))
