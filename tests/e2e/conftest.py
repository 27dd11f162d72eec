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
from tests.polling import poll_until

TORK_RAY = Path(sys.executable).parent / "tork-ray"
# What a shell script's `cmd &` (or `nohup make run &` from one) does to the engine: SIGINT ignored, inherited.
SIGINT_IGNORED = [
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])",
]


class EngineProcess:
    """One `tork-ray run standalone` process; start() and stop() may be repeated on the same data dir.
    `env` adds TORK_* variables; `sigint_ignored` starts it as a background launcher would."""

    def __init__(
        self, data_dir: Path, namespace: str, env: dict[str, str] | None = None, sigint_ignored: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.namespace = namespace
        self.extra_env = env or {}
        self.sigint_ignored = sigint_ignored
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
        command = [str(TORK_RAY), "run", "standalone"]
        if self.sigint_ignored:
            command = [sys.executable, *SIGINT_IGNORED, *command]
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        poll_until(self._healthy, timeout, f"a healthy engine (log: {self.log_path})", every=0.2)
        return time.monotonic() - began

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"engine exited with {self.process.returncode}:\n{self.log()}")
        try:
            return bool(httpx.get(f"{self.url}/health", timeout=2).json().get("status") == "UP")
        except (httpx.HTTPError, ValueError):
            return False

    def stop(self, timeout: float = 60.0, sig: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C (or `sig`: SIGTERM, as a service manager would), as a user would; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"engine did not stop within {timeout}s on {sig.name}:\n{self.log()}") from None

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

    seen: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        seen["job"] = http.get(f"/jobs/{job_id}").json()
        return seen["job"] if seen["job"].get("state") in wanted else None

    try:
        return poll_until(reached, timeout, f"job {job_id} in {sorted(wanted)}", every=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the job: {seen.get('job')}") from None
