"""File operations that stay inside one directory on the worker's host, whatever a task planted there.

A task's step directory is writable by the task (a container sees it as /tork, a shell script as its cwd), so
by the time the worker writes or reads in it, any name may be a symlink to a host path or a FIFO. Everything
here works from directory descriptors opened with O_NOFOLLOW, one segment at a time: a symlink anywhere on the
way is an error, never a path, and only regular files are read or written.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from tork_ray.errors import RuntimeFailure

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO fails (ENXIO, for writing) or returns at once (reading), never blocks.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def make_dir(directory: Path, mode: int = 0o700) -> None:
    """Creates `directory` (its parent must exist); an existing real directory is fine, a symlink is not."""
    try:
        os.mkdir(directory, mode)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            raise RuntimeFailure(f"{directory.name} in the task's directory is not a directory") from None


@contextlib.contextmanager
def opened_dir(directory: Path) -> Iterator[int]:
    """A descriptor of `directory` itself (not of what a symlink there points to)."""
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except OSError as exc:
        raise RuntimeFailure(f"cannot open the task's directory {directory.name}: {exc.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def subdir(top: int, parts: list[str], mode: int = 0o755) -> Iterator[int]:
    """The directory `parts` below `top`, each missing segment made; a symlink on the way is an error."""
    fd = os.dup(top)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, mode, dir_fd=fd)
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise RuntimeFailure(f"cannot use {part!r} as a directory: {exc.strerror}") from None
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def write_at(parent: int, name: str, data: bytes, mode: int) -> None:
    """Creates or replaces the content of the regular file `name` in `parent`, then sets its mode."""
    try:
        fd = os.open(name, _WRITE_FLAGS, 0o600, dir_fd=parent)
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {name!r}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RuntimeFailure(f"cannot write {name!r}: it is not a regular file")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def read_regular(path: Path) -> bytes | None:
    """The content of `path` if it is a regular file (not a symlink, FIFO, device...), else None."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
