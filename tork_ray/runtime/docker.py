"""The Docker runtime: one container per step (pre, main, post), labelled, always removed."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import (
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_SCOPE,
    LABEL_TASK,
    LogSink,
    ProgressSink,
    RunRequest,
    Step,
)

TORK_DIR = "/tork"
DEFAULT_WORKDIR = "/tork/workdir"
# container.wait() blocks; a short poll lets Ray's cancel (KeyboardInterrupt) and our timeout in.
POLL_SECONDS = 0.5
ERROR_TAIL_LINES = 10


class DockerRuntime:
    """Runs a task's steps as containers with the Docker SDK."""

    def __init__(self, client: docker.DockerClient | None = None, *, privileged: bool = False) -> None:
        self.client = client or docker.from_env()
        self.privileged = privileged

    # --- the Runtime contract -------------------------------------------------------------------------

    def run(self, request: RunRequest, log: LogSink, progress: ProgressSink) -> str:
        deadline = time.monotonic() + request.timeout_seconds if request.timeout_seconds else None
        workspace = Path(tempfile.mkdtemp(prefix=f"tork-{request.task_id}-"))
        try:
            for index, step in enumerate(request.pre):
                self._run_step(request, step, workspace / f"pre-{index}", log, None, deadline)
            result = self._run_step(request, request.main, workspace / "main", log, progress, deadline)
            for index, step in enumerate(request.post):
                self._run_step(request, step, workspace / f"post-{index}", log, None, deadline)
            return result
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int:
        """Removes the scope's containers whose task is not live (all of them when `live_task_ids` is None)."""
        removed = 0
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL_SCOPE}={scope}"}):
            if live_task_ids is not None and container.labels.get(LABEL_TASK) in live_task_ids:
                continue
            _remove(container)
            removed += 1
        return removed

    # --- one step -------------------------------------------------------------------------------------

    def _run_step(
        self,
        request: RunRequest,
        step: Step,
        tork_dir: Path,
        log: LogSink,
        progress: ProgressSink | None,
        deadline: float | None,
    ) -> str:
        self.ensure_image(step.image, request.registry)
        _prepare_tork_dir(tork_dir, step, custom_workdir=bool(request.workdir))
        container = self.client.containers.create(**self._container_args(request, step, tork_dir))
        tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
        try:
            if step.files and request.workdir:
                container.put_archive("/", _files_tar(request.workdir, step.files))
            container.start()
            pump = threading.Thread(target=_pump_logs, args=(container, log, tail), daemon=True)
            pump.start()
            exit_code = _wait(container, tork_dir, progress, deadline)
            pump.join(timeout=2)
            if exit_code != 0:
                raise RuntimeFailure(_exit_error(container, exit_code, tail, request.memory_bytes))
            output = tork_dir / "stdout"
            return output.read_text(errors="replace").replace("\x00", "") if output.exists() else ""
        finally:
            _remove(container)

    def _container_args(self, request: RunRequest, step: Step, tork_dir: Path) -> dict[str, Any]:
        env = {**step.env, "TORK_OUTPUT": f"{TORK_DIR}/stdout", "TORK_PROGRESS": f"{TORK_DIR}/progress"}
        entrypoint = list(step.entrypoint) or (["sh", "-c"] if step.run else None)
        command = list(step.cmd) or ([f"{TORK_DIR}/entrypoint"] if step.run else None)
        workdir = request.workdir or (DEFAULT_WORKDIR if step.files else None)
        args: dict[str, Any] = {
            "image": step.image,
            "entrypoint": entrypoint,
            "command": command,
            "environment": env,
            "working_dir": workdir,
            "labels": {
                LABEL_MANAGED: "true",
                LABEL_SCOPE: request.scope,
                LABEL_TASK: request.task_id,
                LABEL_JOB: request.job_id,
            },
            "volumes": {str(tork_dir): {"bind": TORK_DIR, "mode": "rw"}},
            "privileged": self.privileged,
            "detach": True,
        }
        if request.cpus_nano:
            args["nano_cpus"] = request.cpus_nano
        if request.memory_bytes:
            # No swap beyond the limit, so an over-limit task is killed instead of thrashing.
            args["mem_limit"] = request.memory_bytes
            args["memswap_limit"] = request.memory_bytes
        return args

    def ensure_image(self, image: str, registry: dict[str, str] | None = None) -> None:
        """Pulls `image` unless present; one pull per image per node at a time (a file lock across workers)."""
        if not image:
            raise RuntimeFailure("image is required on the docker runtime")
        if self._has_image(image):
            return
        lock_path = Path(tempfile.gettempdir()) / f"tork_ray-pull-{hashlib.sha1(image.encode()).hexdigest()}.lock"
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self._has_image(image):  # another worker pulled it while we waited
                    return
                auth = {"username": registry["username"], "password": registry["password"]} if registry else None
                try:
                    self.client.images.pull(image, auth_config=auth)
                except APIError as exc:
                    raise RuntimeFailure(f"error pulling image {image}: {exc.explanation or exc}") from None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _has_image(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except ImageNotFound:
            return False


def _prepare_tork_dir(tork_dir: Path, step: Step, *, custom_workdir: bool) -> None:
    tork_dir.mkdir(parents=True)
    # The image may run as any user: let it write $TORK_OUTPUT and $TORK_PROGRESS.
    os.chmod(tork_dir, 0o777)
    for name in ("stdout", "progress"):
        (tork_dir / name).touch(mode=0o666)
        os.chmod(tork_dir / name, 0o666)
    if step.run:
        entrypoint = tork_dir / "entrypoint"
        entrypoint.write_text(step.run)
        os.chmod(entrypoint, 0o555)
    if step.files and not custom_workdir:
        workdir = tork_dir / "workdir"
        workdir.mkdir()
        os.chmod(workdir, 0o777)
        for name, content in step.files.items():
            path = workdir / name
            path.write_text(content)
            os.chmod(path, 0o444)


def _files_tar(workdir: str, files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name=f"{workdir.strip('/')}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o444, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wait(container: Container, tork_dir: Path, progress: ProgressSink | None, deadline: float | None) -> int:
    last_progress = ""
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            raise RuntimeFailure("context deadline exceeded (task timed out)")
        try:
            status = container.wait(timeout=POLL_SECONDS)
            return int(status.get("StatusCode", -1))
        except requests.exceptions.RequestException:
            pass  # still running
        if progress is not None:
            last_progress = _report_progress(tork_dir / "progress", last_progress, progress)


def _report_progress(path: Path, last: str, progress: ProgressSink) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return last
    if text and text != last:
        try:
            progress(float(text))
        except ValueError:
            return last
    return text


def _pump_logs(container: Container, log: LogSink, tail: deque[str]) -> None:
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            text = chunk.decode(errors="replace")
            tail.extend(line for line in text.splitlines() if line)
            log(text)
    except (APIError, requests.exceptions.RequestException):
        pass  # the container went away: nothing more to read


def _exit_error(container: Container, exit_code: int, tail: deque[str], memory: int | None) -> str:
    try:
        container.reload()
        oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
    except (APIError, requests.exceptions.RequestException):
        oom = False
    if oom or (exit_code == 137 and memory):
        return f"out of memory: the container was killed at its memory limit ({memory} bytes) (exit code {exit_code})"
    lines = "\n".join(tail)
    return f"exit code {exit_code}: {lines}" if lines else f"exit code {exit_code}"


def _remove(container: Container) -> None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress
            raise
