"""The worker's hot path, made cheaper for issue 12: a process's exit waited on a pidfd (or Popen's own wait where
there is none), the log shipper's thread only for a task that writes, the workspace removed after the result."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.polling import poll_until
from tork_ray.errors import RuntimeFailure
from tork_ray.runtime import waiting
from tork_ray.runtime.discard import Discarder
from tork_ray.runtime.waiting import Deadline, TaskCancelled, wait_process
from tork_ray.worker.logs import LogShipper


def spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "popen-wait"])
def test_wait_process_gives_the_exit_code(pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pidfd:
        monkeypatch.setattr(waiting, "_pidfd", lambda pid: None)
    between: list[float] = []
    process = spawn("import sys, time; time.sleep(0.3); sys.exit(7)")
    assert wait_process(process, Deadline(None), lambda: between.append(time.monotonic())) == 7
    assert process.returncode == 7


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "popen-wait"])
def test_wait_process_still_times_out_and_cancels(pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pidfd:
        monkeypatch.setattr(waiting, "_pidfd", lambda pid: None)
    process = spawn("import time; time.sleep(60)")
    try:
        with pytest.raises(RuntimeFailure, match="timed out"):
            wait_process(process, Deadline(0.2), lambda: None)
        flag = threading.Event()
        threading.Timer(0.2, flag.set).start()
        with pytest.raises(TaskCancelled):
            wait_process(process, Deadline(None, flag.is_set), lambda: None)
    finally:
        process.kill()
        process.wait()


def shippers() -> int:
    return sum(thread.name == "tork-log-shipper" and thread.is_alive() for thread in threading.enumerate())


def test_a_silent_task_starts_no_log_thread_and_a_writing_one_ships_everything() -> None:
    sent: list[str] = []
    before = shippers()
    with LogShipper(sent.append, flush_seconds=0.05) as silent:
        assert shippers() == before
    assert sent == [] and silent.last_sent is None
    with LogShipper(sent.append, flush_seconds=0.05) as shipper:
        shipper.write("one\n")
        assert shippers() == before + 1
        poll_until(lambda: sent == ["one\n"], 10, "the first part shipped by the thread")
        shipper.write("two\n")
    assert "".join(sent) == "one\ntwo\n"  # the tail flushed on the way out


def test_the_discarder_removes_in_order_then_calls_back(tmp_path: Path) -> None:
    done: list[str] = []
    discarder = Discarder()
    for name in ("a", "b"):
        (tmp_path / name / "main").mkdir(parents=True)
        (tmp_path / name / "main" / "stdout").write_text("x")
        discarder.discard(tmp_path / name, lambda name=name: done.append(name))  # type: ignore[misc]
    poll_until(lambda: done == ["a", "b"], 10, "both removed")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
