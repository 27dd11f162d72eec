"""Cancel and stop hold however the engine was started: here as a background launcher starts it, SIGINT ignored
(which every process it starts inherits, Ray's workers and the tasks' processes included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE
from tests.e2e.conftest import SIGINT_IGNORED, EngineProcess, wait_for_job
from tests.polling import poll_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["docker", "shell"])
def ignoring_engine(request: pytest.FixtureRequest, tmp_path: Path, docker_client: Any) -> Iterator[EngineProcess]:
    env = {"TORK_RUNTIME_TYPE": request.param}
    engine = EngineProcess(tmp_path, f"tork_sigint_{uuid.uuid4().hex[:8]}", env=env, sigint_ignored=True)
    yield engine
    if engine.process is not None and engine.process.poll() is None:
        engine.stop(sig=signal.SIGTERM)


def group_alive(pgid: int) -> bool:
    """Any live (not zombie) process in the process group `pgid`: a shell task's script and its children."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


class Sleeper:
    """A `sleep 60` task in either runtime, and how to see that what runs it is there, or gone."""

    def __init__(self, engine: EngineProcess, docker_client: Any, tmp_path: Path, name: str) -> None:
        self.engine, self.docker_client = engine, docker_client
        self.shell = engine.extra_env["TORK_RUNTIME_TYPE"] == "shell"
        self.pid_file = tmp_path / f"{name}.pid"
        # The script's pid is its process group (the shell runtime starts each in a session of its own).
        run = f"echo $$ > {self.pid_file}; sleep 60" if self.shell else "sleep 60"
        task: dict[str, Any] = {"name": name, "run": run}
        if not self.shell:
            task["image"] = TEST_IMAGE
        self.doc = {"name": name, "tasks": [task]}
        self.job_id = ""

    def submit(self, http: httpx.Client) -> None:
        self.job_id = http.post("/jobs", json=self.doc).json()["id"]
        wait_for_job(http, self.job_id, "RUNNING", timeout=90)
        poll_until(self.present, 60, f"the process or container of {self.job_id}")

    def present(self) -> bool:
        if self.shell:
            return self.pid_file.exists() and self.pid_file.read_text().strip() != "" and group_alive(self.pgid())
        label = {"label": f"tork_ray.job-id={self.job_id}"}
        return any(c.status == "running" for c in self.docker_client.containers.list(filters=label))

    def gone(self) -> bool:
        if self.shell:
            return not group_alive(self.pgid())
        label = {"label": f"tork_ray.scope={self.engine.namespace}"}
        return not self.docker_client.containers.list(all=True, filters=label, ignore_removed=True)

    def pgid(self) -> int:
        return int(self.pid_file.read_text())


def timed(check: Callable[[], Any], timeout: float, what: str) -> float:
    began = time.monotonic()
    poll_until(check, timeout, what)
    return time.monotonic() - began


def test_cancel_and_stop_with_sigint_ignored(
    ignoring_engine: EngineProcess, docker_client: Any, tmp_path: Path
) -> None:
    engine = ignoring_engine
    engine.start()
    with engine.http() as http:
        cancelled = Sleeper(engine, docker_client, tmp_path, "cancelled")
        cancelled.submit(http)
        assert http.put(f"/jobs/{cancelled.job_id}/cancel").json() == {"status": "OK"}
        # Far less than the task's 60 s: the cancel, not the end of the sleep, must remove it.
        seconds = timed(cancelled.gone, 30, "the cancelled task's process or container gone")
        print(f"cancel to gone, SIGINT ignored ({engine.extra_env['TORK_RUNTIME_TYPE']}): {seconds:.1f}s")
        assert wait_for_job(http, cancelled.job_id)["state"] == "CANCELLED"

        interrupted = Sleeper(engine, docker_client, tmp_path, "interrupted")
        interrupted.submit(http)
    # A service manager's stop: running tasks are interrupted and what they started is removed.
    began = time.monotonic()
    engine.stop(sig=signal.SIGTERM)
    print(f"engine stop with a task running: {time.monotonic() - began:.1f}s")
    poll_until(interrupted.gone, 30, "the interrupted task's process or container removed with the engine")
    assert cancelled.gone()


def test_the_cancel_tests_pass_with_sigint_ignored() -> None:
    """The suite's own cancel tests do not depend on how pytest was started either."""
    tests = ["tests/integration/test_runtime_shell.py", "tests/integration/test_runtime_podman.py"]
    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=120"]
    command = [sys.executable, *SIGINT_IGNORED, *pytest_command, "-k", "cancel", *tests]
    done = subprocess.run(command, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)
    print(done.stdout[-500:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout, done.stdout[-2000:]
