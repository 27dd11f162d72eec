"""A command run in a pseudo-terminal (python's pty module), for tests of what people see at a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class PtySession:
    """The command's stdin, stdout and stderr are one terminal (120x40 unless told); `screen` is all it wrote,
    ANSI control sequences removed."""

    def __init__(self, command: Sequence[str], env: dict[str, str], columns: int = 120, rows: int = 40) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.master = master
        self.raw = b""
        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
        self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace"))

    def _read(self, seconds: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the terminal closed: the command has exited
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """Reads until `pattern` (a regex) is on the screen; fails the test at the deadline, showing the screen."""
        deadline = time.monotonic() + timeout
        while True:
            if found := re.search(pattern, self.screen):
                return found
            if time.monotonic() >= deadline or not self._read(min(0.5, deadline - time.monotonic())):
                if found := re.search(pattern, self.screen):
                    return found
                raise AssertionError(f"{pattern!r} never appeared within {timeout:g}s; screen:\n{self.screen[-4000:]}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float) -> int:
        """Reads everything left until the command exits; its exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.5):
            if self.process.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        code = self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self.master)
        return code
