"""A PostgreSQL server of one test's own (initdb in a temp dir, its own port), to stop and start at will: the
shared server on 55432 serves every other test and is never stopped."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require
from tork_ray.api.background import free_port


@dataclass
class PrivatePostgres:
    data: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]
        _run(_as_owner(command), 90)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        """Fast shutdown: open sessions are cut off, their transactions rolled back (as in a crash or failover)."""
        self._ctl("-m", "fast", "stop")


def _run(command: list[str], timeout: float) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed: {done.stdout}{done.stderr}"


def _as_owner(command: list[str]) -> list[str]:
    # The server refuses to run as root: as root, run it as Debian's postgres user (as scripts/ensure-postgres.sh).
    if os.getuid() != 0:
        return command
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{part}'" for part in command)]


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    require(bool(bins) and shutil.which("su") is not None, "Debian's postgresql server binaries")
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    tmp = Path(tempfile.mkdtemp(prefix="tork-pg-"))
    tmp.chmod(0o755)
    data = tmp / "pgdata"
    data.mkdir()
    if os.getuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    server = PrivatePostgres(data, free_port(), Path(bins[-1]))
    initdb = [str(server.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    try:  # inside: a server that never answered is stopped (and its directory removed) all the same
        _run(_as_owner(initdb), 120)
        server.start()
        yield server
    finally:
        subprocess.run(
            _as_owner([str(server.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(tmp, ignore_errors=True)
