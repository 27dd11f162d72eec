"""The host side of /tork: script, output, progress and files; the error tail of a log stream."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

from tork_ray.runtime.base import Step
from tork_ray.runtime.workspace import LineTail, ProgressWatcher, files_tar, prepare, read_output


def test_prepare_writes_script_files_and_empty_outputs(tmp_path: Path) -> None:
    step = Step(name="m", run="echo hi", files={"a.txt": "A", "sub/b.txt": "B"})
    prepare(tmp_path / "main", step, files_dir=tmp_path / "main" / "workdir")
    main = tmp_path / "main"
    assert (main / "entrypoint").read_text() == "echo hi"
    assert stat.S_IMODE((main / "entrypoint").stat().st_mode) == 0o555
    assert stat.S_IMODE((main / "stdout").stat().st_mode) == 0o666
    assert (main / "progress").read_text() == ""
    assert (main / "workdir" / "a.txt").read_text() == "A"
    assert (main / "workdir" / "sub" / "b.txt").read_text() == "B"
    assert stat.S_IMODE((main / "workdir" / "a.txt").stat().st_mode) == 0o444


def test_read_output_strips_nul_and_keeps_newlines(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_bytes(b"hello\x00 world\n")
    assert read_output(tmp_path) == "hello world\n"
    assert read_output(tmp_path / "missing") == ""


def test_files_tar_puts_files_under_the_workdir() -> None:
    with tarfile.open(fileobj=io.BytesIO(files_tar("/src/app", {"a.txt": "A"}))) as archive:
        member = archive.getmember("src/app/a.txt")
        assert member.mode == 0o444
        extracted = archive.extractfile(member)
        assert extracted is not None and extracted.read() == b"A"


def test_progress_reported_on_change_only(tmp_path: Path) -> None:
    seen: list[float] = []
    watcher = ProgressWatcher(tmp_path, seen.append)
    watcher.poll()  # no file yet
    (tmp_path / "progress").write_text("25\n")
    watcher.poll()
    watcher.poll()
    (tmp_path / "progress").write_text("not a number")
    watcher.poll()
    (tmp_path / "progress").write_text("50.5")
    watcher.poll()
    assert seen == [25.0, 50.5]


def test_line_tail_keeps_the_last_complete_lines_across_chunks() -> None:
    tail = LineTail(3)
    for chunk in ["one\ntw", "o\n\nthr", "ee\nfour\nfi", "ve"]:
        tail.feed(chunk)
    assert tail.lines() == ["three", "four", "five"]
