"""The engine as `make run` starts it: `tork-ray run standalone` in its own process, reached over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine import free_port

TORK_RAY = Path(sys.executable).parent / "tork-ray"


class EngineProcess:
    """One `tork-ray run standalone` process; start() and stop() may be repeated on the same data dir."""

    def __init__(self, data_dir: Path, namespace: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.namespace = namespace
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "engine.log"

    def start(self, timeout: float = 120.0) -> float:
        """Starts the engine and waits for a healthy API; returns the seconds it took."""
        env = {
            **os.environ,
            "TORK_COORDINATOR_ADDRESS": f"127.0.0.1:{self.port}",
            "TORK_DATA_DIR": str(self.data_dir),
            "TORK_WORKER_QUEUES_DEFAULT": "2",
            "TORK_RAY_NAMESPACE": self.namespace,
            "RAY_AUTH_MODE": "disabled",
            **self.extra_env,
        }
        began = time.monotonic()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([str(TORK_RAY), "run", "standalone"], env=env, stdout=log, stderr=log)
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"engine exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).json().get("status") == "UP":
                    return time.monotonic() - began
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"engine not healthy within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"engine did not stop within {timeout}s on SIGINT:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up, nothing flushed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture
def engine_process(tmp_path: Path, docker_client: Any) -> Iterator[EngineProcess]:
    engine = EngineProcess(tmp_path, f"tork_e2e_{uuid.uuid4().hex[:8]}")
    yield engine
    if engine.process is not None and engine.process.poll() is None:
        engine.stop()


def wait_for_job(http: httpx.Client, job_id: str, *states: str, timeout: float = 60.0) -> dict[str, Any]:
    wanted = set(states) or {"COMPLETED", "FAILED", "CANCELLED"}
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        if job.get("state") in wanted:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {wanted} in {timeout}s; last seen: {job}")
