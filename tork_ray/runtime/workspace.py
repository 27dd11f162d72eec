"""The host directory a step sees as /tork (containers) or as its working directory (shell): script, output
file, progress file and the task's `files`."""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import time
from pathlib import Path

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import ProgressSink, Step
from tork_ray.runtime.confined import make_dir, opened_dir, read_regular, subdir, write_at
from tork_ray.runtime.spawning import SPAWN_LOCK
from tork_ray.spec.paths import file_name_parts

OUTPUT_FILE = "stdout"
PROGRESS_FILE = "progress"
ENTRYPOINT_FILE = "entrypoint"


def prepare(
    directory: Path,
    step: Step,
    *,
    files_dir: Path | None,
    output_file: str = OUTPUT_FILE,
    shared: bool = True,
    made: bool = False,
) -> None:
    """Writes the step's script (0555) and its `files` (0444) into `files_dir` when given (None: the runtime
    puts them somewhere else itself).

    `shared` (containers): the directory is opened to every user, with empty output and progress files, as a
    container may run as any user and must be able to write $TORK_OUTPUT and $TORK_PROGRESS. A shell step's
    directory is not shared: it is its own temp dir, kept private to the task's user, who creates those files
    when the script writes them (each file made and removed is measurable work per task on a disk file
    system: a step's directory of 2 entries instead of 5 took 0.2 ms less CPU on this machine's ext4).

    `directory` is the step's own directory inside the task's private workspace, or its own temp dir; every
    write below it is confined to it (tork_ray.runtime.confined), whatever an earlier step planted there.
    `made`: the caller has just made `directory` itself (mkdtemp), so nothing can be planted there yet."""
    if not made:
        make_dir(directory)
    with opened_dir(directory) as top:
        if shared:
            os.fchmod(top, 0o777)
            for name in (output_file, PROGRESS_FILE):
                write_at(top, name, b"", 0o666)
        if step.run:
            with SPAWN_LOCK:  # executed, so never open for writing while another thread forks
                write_at(top, ENTRYPOINT_FILE, step.run.encode(), 0o555)
        if files_dir is not None and step.files:
            with subdir(top, list(files_dir.relative_to(directory).parts)) as inner:
                os.fchmod(inner, 0o777)
                _write_files_at(inner, step.files)


def private_dir(workspace: Path, label: str) -> Path:
    """A directory of the worker's own beside a step's: no container mounts it, so nothing there is the task's."""
    path = workspace / f"{label}.private"
    make_dir(path)
    return path


def write_files(directory: Path, files: dict[str, str]) -> None:
    """Writes `files` (0444) inside `directory` and nowhere else: each name must be a relative path without
    `..` (tork_ray.spec.paths: checked here again, the names may not have come through submit validation),
    parents are made inside, and no symlink is followed on the way."""
    with opened_dir(directory) as top:
        _write_files_at(top, files)


def _write_files_at(top: int, files: dict[str, str]) -> None:
    for name, content in files.items():
        parts = _parts(name)
        with subdir(top, parts[:-1]) as parent:
            write_at(parent, parts[-1], content.encode(), 0o444)


def _parts(name: str) -> list[str]:
    try:
        return file_name_parts(name)
    except ValueError as exc:
        raise RuntimeFailure(f"files: {exc}") from None


def files_tar(workdir: str, files: dict[str, str]) -> bytes:
    """A tar of `files` under `workdir`, to copy into a container whose working directory is in its image.
    `workdir` is a path inside the container (the engine resolves it there); the names may not climb out."""
    # An absolute container path, as Docker requires of a working directory: "/app/../etc" is /etc there, and
    # no member name of the archive ever holds a "..".
    base = [part for part in posixpath.normpath("/" + workdir).split("/") if part]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name="/".join([*base, *_parts(name)]))
            info.size, info.mode, info.mtime = len(data), 0o444, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_output(directory: Path, output_file: str = OUTPUT_FILE) -> str:
    """$TORK_OUTPUT's content: the task's result (NUL bytes stripped, as Tork stores it). A symlink the task
    put there (to a host file) or a FIFO reads as no output."""
    data = read_regular(directory / output_file)
    return "" if data is None else data.decode(errors="replace").replace("\x00", "")


class ProgressWatcher:
    """Reports $TORK_PROGRESS when its number changes; the runtimes call poll() from their wait loops."""

    def __init__(self, directory: Path, sink: ProgressSink | None) -> None:
        self._path = directory / PROGRESS_FILE
        self._sink = sink
        self._last = ""

    def poll(self) -> None:
        if self._sink is None:
            return
        data = read_regular(self._path)  # as read_output: never through a symlink, never blocked on a FIFO
        if data is None:
            return
        text = data.decode(errors="replace").strip()
        if not text or text == self._last:
            return
        self._last = text
        try:
            value = float(text)
        except ValueError:
            return  # a half-written or non-numeric file: Tork ignores it too
        self._sink(value)


class LineTail:
    """The last `size` complete lines of a stream that arrives in arbitrary chunks (for error messages)."""

    def __init__(self, size: int = 10) -> None:
        self._size = size
        self._lines: list[str] = []
        self._partial = ""

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        self._lines = [*self._lines, *(line for line in lines if line.strip())][-self._size :]

    def lines(self) -> list[str]:
        last = [self._partial] if self._partial.strip() else []
        return [*self._lines, *last][-self._size :]
