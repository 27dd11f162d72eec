"""One container from start to exit: its log streamed, its progress file watched, its end explained."""

from __future__ import annotations

import threading

import requests
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import LogSink
from tork_ray.runtime.docker_daemon import KILLED, DockerGone, daemon_gone, stopped_by_daemon, wait_for_daemon
from tork_ray.runtime.waiting import Deadline
from tork_ray.runtime.workspace import LineTail, ProgressWatcher

ERROR_TAIL_LINES = 10


def run_to_exit(container: Container, log: LogSink, progress: ProgressWatcher, deadline: Deadline) -> None:
    """Starts `container` and returns when it exited 0; raises RuntimeFailure otherwise."""
    output = ContainerOutput(log, LineTail(ERROR_TAIL_LINES))
    start(container)
    pump = threading.Thread(target=_pump_logs, args=(container, output), name="tork-log-pump", daemon=True)
    pump.start()
    exit_code, restarted = wait_exit(container, progress, deadline)
    # The stream ends with the container; the join only bounds a daemon that is slow to close it.
    pump.join(timeout=5)
    if not pump.is_alive():  # else what it still sends would come twice
        catch_up(container, output)
    if exit_code in KILLED and (restarted or stopped_by_daemon(container.client, exit_code)):
        raise DockerGone(
            f"the Docker engine stopped while the task ran, and stopped its container (exit code {exit_code})"
        )
    if exit_code != 0:
        raise RuntimeFailure(exit_error(container, exit_code, output.tail.lines()))


def start(container: Container) -> None:
    try:
        container.start()
    except APIError as exc:  # e.g. a device request no driver can serve, a capability the host cannot grant
        raise RuntimeFailure(f"cannot start container: {exc.explanation or exc}") from None


def wait_exit(container: Container, progress: ProgressWatcher, deadline: Deadline) -> tuple[int, bool]:
    """The container's exit code, and whether its engine went away meanwhile. Waits in short slices: Ray's
    cancel and the task's timeout get in between. An engine that goes away (a restart) is waited for: it keeps
    the container's record, so a container that ended on its own meanwhile still gives its own exit code."""
    restarted = False
    while True:
        deadline.check()
        try:
            status = container.wait(timeout=max(0.05, deadline.remaining()))
            return int(status.get("StatusCode", -1)), restarted
        except requests.exceptions.RequestException as exc:
            if daemon_gone(exc):  # not "still running": the engine's socket is gone
                restarted = True
                wait_for_daemon(container.client, deadline)
        except NotFound:  # the engine came back without it (its data gone, or removed by someone)
            if restarted:
                raise DockerGone("the Docker engine restarted while the task ran, and lost its container") from None
            raise
        progress.poll()


class ContainerOutput:
    """A container's output on its way to the task's log: what was sent so far, counted in the daemon's bytes."""

    def __init__(self, log: LogSink, tail: LineTail) -> None:
        self.log = log
        self.tail = tail
        self.sent = 0

    def send(self, chunk: bytes) -> None:
        self.sent += len(chunk)
        text = chunk.decode(errors="replace")
        self.tail.feed(text)
        self.log(text)


def _pump_logs(container: Container, output: ContainerOutput) -> None:
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            output.send(chunk)
    except (APIError, requests.exceptions.RequestException):
        pass  # the container went away (removed on cancel or timeout): nothing more to read


def catch_up(container: Container, output: ContainerOutput) -> None:
    """Sends what the follow stream missed. A stream opened as the container exits can end at once with
    nothing, although the container printed: Docker answers a follow request for a container that is exiting
    before its log file is read (a task printing `bye world` and exiting at once lost its whole log about once
    in 30 runs on a busy daemon). Once the container has exited, a plain read holds all of it."""
    try:
        everything = container.logs(stream=False, stdout=True, stderr=True)
    except (APIError, requests.exceptions.RequestException):
        return  # removed meanwhile (cancel, timeout): its log went with it
    if len(everything) > output.sent:
        output.send(everything[output.sent :])


class LinePrefixer:
    """Turns chunks of output into whole lines that each start with `[name] `; a partial line waits for its end."""

    def __init__(self, name: str) -> None:
        self.prefix = f"[{name}] "
        self._partial = ""

    def feed(self, text: str) -> str:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        return "".join(f"{self.prefix}{line}\n" for line in lines)

    def flush(self) -> str:
        rest, self._partial = self._partial, ""
        return f"{self.prefix}{rest}\n" if rest else ""


def pump_prefixed(container: Container, log: LogSink, name: str) -> None:
    """A sidecar's stdout and stderr into the task's log, as `[name] line`, until its container goes."""
    lines = LinePrefixer(name)
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            log(lines.feed(chunk.decode(errors="replace")))
    except (APIError, requests.exceptions.RequestException):
        pass  # removed at the end of the task: its stream just stops
    finally:
        log(lines.flush())


def exit_error(container: Container, exit_code: int, lines: list[str]) -> str:
    """Tork's `exit code N: <last lines>`, or an explicit out-of-memory error when the kernel killed it."""
    try:
        container.reload()
        state = container.attrs.get("State", {})
        oom = bool(state.get("OOMKilled"))
        limit = int(container.attrs.get("HostConfig", {}).get("Memory") or 0)
    except (APIError, requests.exceptions.RequestException):
        oom, limit = False, 0
    if oom:
        where = f" of {format_bytes(limit)}" if limit else ""
        return f"out of memory: the task was killed at its memory limit{where} (exit code {exit_code})"
    text = "\n".join(lines)
    return f"exit code {exit_code}: {text}" if text else f"exit code {exit_code}"


def format_bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size} bytes"
