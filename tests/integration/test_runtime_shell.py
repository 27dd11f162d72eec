"""The shell runtime with real processes: what a script sees, what it returns, and that nothing outlives it."""

from __future__ import annotations

import _thread
import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.polling import poll_until
from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import RunRequest, Step
from tork_ray.runtime.shell import ScriptOutput, ShellRuntime
from tork_ray.runtime.waiting import TaskCancelled
from tork_ray.settings import RuntimeSettings
from tork_ray.worker.interrupts import restore_sigint
from tork_ray.worker.task import execute

SHELL = RuntimeSettings(type="shell")


class Recorder:
    """Stands in for the coordinator actor: records what the worker tells it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        for name in ("task_started", "append_log", "task_progress"):
            setattr(self, name, _Method(self.calls, name))

    def logs(self) -> str:
        return "".join(args[1] for name, args in self.calls if name == "append_log")


class _Method:
    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], name: str) -> None:
        self.calls, self.name = calls, name

    def remote(self, *args: Any) -> None:
        self.calls.append((self.name, args))


def request(run: str, task_id: str = "shell-task", **fields: Any) -> RunRequest:
    env, files = fields.pop("env", {}), fields.pop("files", {})
    step = fields.pop("main", None) or Step(name="main", run=run, env=env, files=files)
    return RunRequest(task_id=task_id, job_id="job", scope="test", main=step, **fields)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child we are not the parent of may linger as a zombie until init reaps it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def written(path: Path) -> bool:
    """The script wrote `path` whole (a redirect creates the file before the echo fills it)."""
    return path.exists() and path.read_text().endswith("\n")


@pytest.fixture
def sigint_handled() -> Iterator[None]:
    """This process as a Ray task's worker is once restore_sigint() ran, whatever disposition pytest inherited:
    `_thread.interrupt_main` (Ray's cancel) raises KeyboardInterrupt only where SIGINT has a Python handler."""
    saved = signal.getsignal(signal.SIGINT)
    restore_sigint()
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    yield
    signal.signal(signal.SIGINT, saved)


def interrupt_once(ready: Callable[[], bool], timeout: float = 60.0) -> None:
    """Ray's cancel, simulated: KeyboardInterrupt in the main thread once `ready()`; sent even if that never
    comes (the test then fails on what it checks), so the runtime's wait never hangs the test."""

    def interrupt() -> None:
        try:
            poll_until(ready, timeout, "the task to start")
        finally:
            _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()


def test_script_sees_only_its_env_its_files_and_its_workdir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_SECRET", "must-not-leak")
    script = """
echo "cwd=$(pwd)"
echo "workdir=$WORKDIR"
echo "greeting=$GREETING"
echo "secret=${WORKER_SECRET:-unset}"
echo "file=$(cat data.txt)"
env | cut -d= -f1 | sort | tr '\\n' ' ' > "$TORK_OUTPUT"
echo 42 > "$TORK_PROGRESS"
"""
    recorder = Recorder()
    outcome = execute(
        request(script, env={"GREETING": "hello"}, files={"data.txt": "from files"}), recorder, SHELL, "node-1"
    )
    names = set(outcome["result"].split())
    assert {"GREETING", "TORK_OUTPUT", "TORK_PROGRESS", "WORKDIR", "PATH", "HOME"} <= names
    assert "WORKER_SECRET" not in names
    assert names - {"GREETING", "TORK_OUTPUT", "TORK_PROGRESS", "WORKDIR", "PATH", "HOME"} <= {"PWD", "SHLVL", "_"}
    log = recorder.logs()
    assert "greeting=hello" in log and "secret=unset" in log and "file=from files" in log
    cwd = next(line for line in log.splitlines() if line.startswith("cwd="))[4:]
    assert f"workdir={cwd}" in log and "tork-shell-task-" in cwd
    # The temp dir is removed after the result, off the task's clock (runtime/discard.py).
    poll_until(lambda: not Path(cwd).exists(), 30, "the task's temp dir removed")
    # A start report delay of 0 (the request's default): the start reported at once, and with the result too.
    assert recorder.calls[0] == ("task_started", ("shell-task", "node-1", outcome["startedAt"]))
    assert outcome["nodeId"] == "node-1"


def test_non_zero_exit_fails_with_the_last_lines() -> None:
    outcome = execute(request("echo first; echo 'last words' >&2; exit 3"), Recorder(), SHELL, "n")
    assert outcome["error"].startswith("error executing command: exit status 3")
    assert "last words" in outcome["error"]


def test_unsupported_fields_fail_the_task_naming_them() -> None:
    main = Step(name="main", run="true", image="busybox", cmd=("x",))
    outcome = execute(request("", main=main, memory_bytes=1024), Recorder(), SHELL, "n")
    assert outcome["error"] == "limits, image, cmd are not supported on shell runtime"


def test_pre_and_post_run_around_main_and_result_is_mains() -> None:
    req = request(
        "echo -n main > $TORK_OUTPUT",
        pre=(Step(name="pre", run="echo pre-ran"),),
        post=(Step(name="post", run="echo post-ran; echo -n post > $TORK_OUTPUT"),),
    )
    recorder = Recorder()
    assert execute(req, recorder, SHELL, "n")["result"] == "main"
    log = recorder.logs()
    assert log.index("pre-ran") < log.index("post-ran")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}; sleep 300"
    began = time.monotonic()
    with pytest.raises(RuntimeFailure, match="context deadline exceeded"):
        ShellRuntime(SHELL).run(request(script, timeout_seconds=1.0), lambda _: None, lambda _: None)
    print(f"a 1s timeout ended the task after {time.monotonic() - began:.1f}s")
    background = int(pids.read_text())
    poll_until(lambda: not alive(background), 10, "the background child killed")


def test_cancel_flag_kills_the_whole_process_group(tmp_path: Path) -> None:
    """The worker's own cancel path: its waits read the cancel flag (Ray's, in a worker), with no signal."""
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}; sleep 300"
    # Cancelled as soon as the script has started its child: nothing here depends on a sleep's length.
    with pytest.raises(TaskCancelled):
        ShellRuntime(SHELL).run(request(script), lambda _: None, lambda _: None, cancelled=lambda: written(pids))
    background = int(pids.read_text())
    poll_until(lambda: not alive(background), 10, "the background child killed")


def test_cancel_interrupt_kills_the_whole_process_group(tmp_path: Path, sigint_handled: None) -> None:
    """Ray's cancel interrupt arrives as KeyboardInterrupt in the main thread, as `_thread.interrupt_main` makes it."""
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}; sleep 300"
    interrupt_once(lambda: written(pids))
    with pytest.raises(KeyboardInterrupt):
        ShellRuntime(SHELL).run(request(script), lambda _: None, lambda _: None)
    background = int(pids.read_text())
    poll_until(lambda: not alive(background), 10, "the background child killed")


def test_runs_as_the_configured_uid_and_gid() -> None:
    require(os.geteuid() == 0, "root (to switch a task's uid/gid)")
    settings = RuntimeSettings(type="shell", shell_uid="65534", shell_gid="65534")
    result = ShellRuntime(settings).run(
        request('echo -n "$(id -u):$(id -g)" > $TORK_OUTPUT'), lambda _: None, lambda _: None
    )
    assert result == "65534:65534"


def test_a_custom_shell_command() -> None:
    script = "echo -n $(readlink /proc/$$/exe) > $TORK_OUTPUT"
    default = ShellRuntime(SHELL).run(request(script), lambda _: None, lambda _: None)
    assert default == os.path.realpath(str(shutil.which("bash")))
    settings = RuntimeSettings(type="shell", shell_cmd=("sh", "-c"))
    custom = ShellRuntime(settings).run(request(script), lambda _: None, lambda _: None)
    assert custom == os.path.realpath(str(shutil.which("sh")))


def test_tasks_run_on_threads_never_find_their_script_busy() -> None:
    """An executor per node runs a queue's tasks on threads: a fork by one thread while another writes its
    script made that script's exec fail with "Text file busy" (about 1 task in 200 on 4 threads, before
    runtime/spawning.py)."""
    runtime = ShellRuntime(SHELL)

    def run(index: int) -> str:
        try:
            return runtime.run(request("true", task_id=f"threaded-{index}"), lambda _: None, lambda _: None)
        except RuntimeFailure as exc:
            return exc.message

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [outcome for outcome in pool.map(run, range(1000)) if outcome]
    assert failures == []


def test_a_loud_script_is_read_whole_while_it_runs() -> None:
    """The waiting thread reads the pipe (no log thread per step): a script that writes far more than a pipe
    holds (64 KiB) is never blocked on it, and every byte reaches the log."""
    parts: list[str] = []
    script = "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo -n done > $TORK_OUTPUT"
    assert ShellRuntime(SHELL).run(request(script), parts.append, lambda _: None) == "done"
    assert "".join(parts) == "x" * 1_000_000 + "\n"


def test_progress_is_read_while_output_streams() -> None:
    """The progress file is read about every half second even when output never lets the wait time out."""
    seen: list[float] = []
    script = "echo 50 > $TORK_PROGRESS; i=0; while [ $i -lt 150 ]; do echo line $i; sleep 0.01; i=$((i+1)); done"
    ShellRuntime(SHELL).run(request(script), lambda _: None, seen.append)
    assert seen == [50.0]


def test_without_pidfds_the_exit_and_the_output_are_still_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels before 5.3 have no pidfd_open: the wait then polls the exit, and still reads the pipe meanwhile."""
    from tork_ray.runtime import waiting

    monkeypatch.setattr(waiting, "_pidfd", lambda _pid: None)
    parts: list[str] = []
    seen: list[float] = []
    script = "echo 70 > $TORK_PROGRESS; head -c 200000 /dev/zero | tr '\\0' y; sleep 0.7; echo -n ok > $TORK_OUTPUT"
    assert ShellRuntime(SHELL).run(request(script), parts.append, seen.append) == "ok"
    assert "".join(parts) == "y" * 200_000
    assert seen == [70.0]
    with pytest.raises(RuntimeFailure, match="exit status 4: last"):
        ShellRuntime(SHELL).run(request("echo last; exit 4"), lambda _: None, lambda _: None)


def test_output_held_by_a_process_outside_the_group_is_drained_for_a_bounded_time(tmp_path: Path) -> None:
    """A process that starts a session of its own escapes the group kill and may keep the pipe open: the step
    ends anyway, once what it wrote before the script's exit is read (OUTPUT_DRAIN_SECONDS at most)."""
    pids = tmp_path / "pids"
    script = f"echo before; setsid sh -c 'echo $$ > {pids}; exec sleep 300' & sleep 0.2; echo -n ok > $TORK_OUTPUT"
    parts: list[str] = []
    try:
        assert ShellRuntime(SHELL).run(request(script), parts.append, lambda _: None) == "ok"
        assert "".join(parts) == "before\n"
    finally:
        if pids.exists():
            os.kill(int(pids.read_text()), signal.SIGKILL)


def test_each_step_has_a_private_directory_of_its_own() -> None:
    """Each step's cwd is a fresh temp dir (as Tork's shell runtime gives each), 0700: no step sees another's
    files, and no other user on the host can enter it."""
    step = Step(name="pre", run='echo "pre $PWD $(stat -c %a .)"; touch left-by-pre')
    main = Step(name="main", run='echo "main $PWD $(stat -c %a .) $(ls | tr "\\n" " ")"; ls -a > $TORK_OUTPUT')
    parts: list[str] = []
    result = ShellRuntime(SHELL).run(request("", main=main, pre=(step,)), parts.append, lambda _: None)
    pre_line, main_line = "".join(parts).splitlines()
    _, pre_dir, pre_mode = pre_line.split()
    _, main_dir, main_mode, *listed = main_line.split()
    assert pre_dir != main_dir and pre_mode == main_mode == "700"
    assert listed == ["entrypoint"]  # $TORK_OUTPUT and $TORK_PROGRESS appear when the script writes them
    assert "left-by-pre" not in result


def test_a_timeout_gets_in_while_a_script_writes_without_pause() -> None:
    with pytest.raises(RuntimeFailure, match="context deadline exceeded"):
        ShellRuntime(SHELL).run(request("yes", timeout_seconds=1.0), lambda _: None, lambda _: None)


def test_a_character_split_between_two_reads_reaches_the_log_whole() -> None:
    """A read ends in the middle of a 2-byte character: the next one completes it."""
    read_end, write_end = os.pipe()
    parts: list[str] = []
    output = ScriptOutput(os.fdopen(read_end, "rb"), parts.append)
    try:
        os.write(write_end, b"a" * 65535 + "é".encode()[:1])
        assert output.pull() is True
        os.write(write_end, "é".encode()[1:])
        os.close(write_end)
        output.drain(5)
    finally:
        with contextlib.suppress(OSError):
            os.close(write_end)
    assert "".join(parts) == "a" * 65535 + "é"
