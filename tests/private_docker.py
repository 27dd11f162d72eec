"""A Docker engine of one test's own (its socket, data, exec root, pid file in a temp dir, and a bridge of its own;
no iptables), to restart at will: the shared engine serves every other test and is never restarted."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker

from tests.conftest import TEST_IMAGE, require
from tests.polling import poll_until


@dataclass
class PrivateDocker:
    root: Path
    bridge: str
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @contextmanager
    def client(self) -> Iterator[docker.DockerClient]:
        client = docker.DockerClient(base_url=self.host)
        try:
            yield client
        finally:
            client.close()

    def start(self) -> None:
        command = [
            "dockerd",
            f"--host={self.host}",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'docker.pid'}",
            # Its own bridge: with `--bridge=none` dockerd deletes the host's docker0, which the shared engine's
            # containers need.
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip6tables=false",
        ]
        self.log = self.log or (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        poll_until(self._answers, 60, f"the private dockerd at {self.host} to answer")

    def stop(self) -> None:
        """As `systemctl stop docker`: SIGTERM; the engine stops its containers, then exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except Exception:
            return False


@contextmanager
def private_docker() -> Iterator[PrivateDocker]:
    require(shutil.which("dockerd") is not None and os.getuid() == 0, "dockerd, run as root")
    root = Path(tempfile.mkdtemp(prefix="tork-dk-", dir="/tmp"))  # short: a socket path has ~100 characters
    engine = PrivateDocker(root, bridge=f"tkdk{secrets.token_hex(4)}")  # at most 15 characters
    try:  # started inside: one that never answered is stopped all the same
        _make_bridge(engine.bridge)
        engine.start()
        _load_test_image(engine)
        yield engine
    finally:
        engine.stop()
        if engine.log is not None:
            engine.log.close()
        # Its overlay mounts are gone with it; what is left is plain files.
        subprocess.run(["rm", "-rf", str(root)], check=False, timeout=120)
        subprocess.run(["ip", "link", "delete", engine.bridge], check=False, capture_output=True, timeout=30)


def _make_bridge(name: str) -> None:
    """A bridge for the private engine's containers, on a subnet of its own (10.213.x.0/24)."""
    subnet = f"10.213.{secrets.randbelow(250) + 1}"
    for command in (
        ["ip", "link", "add", "name", name, "type", "bridge"],
        ["ip", "addr", "add", f"{subnet}.1/24", "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=30)


def _load_test_image(engine: PrivateDocker) -> None:
    """The shared engine's test image, saved and loaded (no registry is reachable here)."""
    shared = docker.from_env()
    try:
        tarball = b"".join(shared.api.get_image(TEST_IMAGE))  # saved under this very name, not its first tag
        with engine.client() as client:
            client.images.load(tarball)
            client.images.get(TEST_IMAGE)
    finally:
        shared.close()
