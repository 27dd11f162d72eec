"""The host side of /tork: script, output, progress and files; the error tail of a log stream."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Step
from tork_ray.runtime.workspace import LineTail, ProgressWatcher, files_tar, prepare, read_output, write_files


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


# --- containment: nothing a task names or plants reaches outside its directory ----------------------------------


def outside_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["<outside>/x", "../../outside/y", "", "a\x00b", "ok/../../../outside/z", "dir/"])
def test_write_files_refuses_a_name_outside_on_its_own(tmp_path: Path, name: str) -> None:
    # The runtimes check again: `files` may reach a worker without submit validation (templates, defaults, ...).
    task_dir, outside = tmp_path / "task" / "main", tmp_path / "outside"
    task_dir.mkdir(parents=True)
    outside.mkdir()
    name = name.replace("<outside>", str(outside))
    with pytest.raises(RuntimeFailure, match=r"^files: file name"):
        write_files(task_dir, {name: "escaped"})
    with pytest.raises(RuntimeFailure, match=r"^files: file name"):
        files_tar("/app", {name: "escaped"})
    assert outside_files(tmp_path) == set()


def test_absolute_names_never_land_on_the_host(tmp_path: Path) -> None:
    target = tmp_path / "host-file"
    with pytest.raises(RuntimeFailure):
        write_files(tmp_path / "task", {str(target): "escaped"})  # the task dir does not even exist
    assert not target.exists()


def test_a_symlinked_directory_planted_in_the_task_dir_is_not_followed(tmp_path: Path) -> None:
    task_dir, outside = tmp_path / "main", tmp_path / "outside"
    task_dir.mkdir()
    outside.mkdir()
    (task_dir / "sub").symlink_to(outside)
    with pytest.raises(RuntimeFailure, match="cannot use 'sub' as a directory"):
        write_files(task_dir, {"sub/passwd": "escaped"})
    assert list(outside.iterdir()) == []


def test_a_symlinked_file_planted_in_the_task_dir_is_not_written_through(tmp_path: Path) -> None:
    task_dir, victim = tmp_path / "main", tmp_path / "victim"
    task_dir.mkdir()
    victim.write_text("host data")
    (task_dir / "f.txt").symlink_to(victim)
    with pytest.raises(RuntimeFailure, match=r"cannot write 'f\.txt'"):
        write_files(task_dir, {"f.txt": "escaped"})
    assert victim.read_text() == "host data"


def test_a_planted_fifo_fails_instead_of_blocking(tmp_path: Path) -> None:
    task_dir = tmp_path / "main"
    task_dir.mkdir()
    os.mkfifo(task_dir / "pipe")
    with pytest.raises(RuntimeFailure, match="cannot write 'pipe'"):
        write_files(task_dir, {"pipe": "x"})
    os.mkfifo(task_dir / "progress")
    seen: list[float] = []
    ProgressWatcher(task_dir, seen.append).poll()  # returns at once, reports nothing
    assert seen == []


def test_a_step_directory_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "workspace", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "main").symlink_to(outside)  # e.g. planted by a pre step's script
    with pytest.raises(RuntimeFailure, match="not a directory"):
        prepare(workspace / "main", Step(name="m", run="echo", files={"a": "A"}), files_dir=workspace / "main")
    assert list(outside.iterdir()) == []
    assert stat.S_IMODE(outside.stat().st_mode) != 0o777


def test_a_symlinked_workdir_in_the_step_dir_is_refused(tmp_path: Path) -> None:
    main, outside = tmp_path / "main", tmp_path / "outside"
    main.mkdir()
    outside.mkdir()
    (main / "workdir").symlink_to(outside)
    with pytest.raises(RuntimeFailure, match="cannot use 'workdir'"):
        prepare(main, Step(name="m", files={"a": "A"}), files_dir=main / "workdir")
    assert list(outside.iterdir()) == []


def test_output_replaced_by_a_symlink_reads_as_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("root:x:0:0")
    main = tmp_path / "main"
    main.mkdir()
    (main / "stdout").symlink_to(secret)  # what a container can do to /tork/stdout
    assert read_output(main) == ""
    (main / "progress").symlink_to(secret)
    seen: list[float] = []
    ProgressWatcher(main, seen.append).poll()
    assert seen == []


@pytest.mark.parametrize(
    ("workdir", "member"),
    [("/src/app/", "src/app/a/b.txt"), ("/app/../etc", "etc/a/b.txt"), ("../../x", "x/a/b.txt"), ("/", "a/b.txt")],
)
def test_files_tar_names_stay_under_the_workdir(workdir: str, member: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(files_tar(workdir, {"./a//b.txt": "B"}))) as archive:
        assert archive.getnames() == [member]
