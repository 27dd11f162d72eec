"""The host directory a step sees as /tork (containers) or as its working directory (shell): script, output
file, progress file and the task's `files`."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

from tork_ray.runtime.base import ProgressSink, Step

OUTPUT_FILE = "stdout"
PROGRESS_FILE = "progress"
ENTRYPOINT_FILE = "entrypoint"


def prepare(directory: Path, step: Step, *, files_dir: Path | None, output_file: str = OUTPUT_FILE) -> None:
    """Writes the step's script (0555), empty output and progress files, and its `files` (0444) into
    `files_dir` when given (None: the runtime puts them somewhere else itself)."""
    directory.mkdir(parents=True, exist_ok=True)
    # A container may run as any user: it must be able to write $TORK_OUTPUT and $TORK_PROGRESS.
    os.chmod(directory, 0o777)
    for name in (output_file, PROGRESS_FILE):
        path = directory / name
        path.touch()
        os.chmod(path, 0o666)
    if step.run:
        script = directory / ENTRYPOINT_FILE
        script.write_text(step.run)
        os.chmod(script, 0o555)
    if files_dir is not None and step.files:
        files_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(files_dir, 0o777)
        write_files(files_dir, step.files)


def write_files(directory: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.chmod(path, 0o444)


def files_tar(workdir: str, files: dict[str, str]) -> bytes:
    """A tar of `files` under `workdir`, to copy into a container whose working directory is in its image."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name=f"{workdir.strip('/')}/{name}".lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o444, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_output(directory: Path, output_file: str = OUTPUT_FILE) -> str:
    """$TORK_OUTPUT's content: the task's result (NUL bytes stripped, as Tork stores it)."""
    path = directory / output_file
    try:
        return path.read_text(errors="replace").replace("\x00", "")
    except OSError:
        return ""


class ProgressWatcher:
    """Reports $TORK_PROGRESS when its number changes; the runtimes call poll() from their wait loops."""

    def __init__(self, directory: Path, sink: ProgressSink | None) -> None:
        self._path = directory / PROGRESS_FILE
        self._sink = sink
        self._last = ""

    def poll(self) -> None:
        if self._sink is None:
            return
        try:
            text = self._path.read_text().strip()
        except OSError:
            return
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
