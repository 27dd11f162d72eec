"""The Podman runtime, through the `podman` command (daemonless): the Docker runtime's contract, minus sidecars."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import (
    LABEL_SCOPE,
    LABEL_TASK,
    CancelProbe,
    LogSink,
    NoTracker,
    ProgressSink,
    Registry,
    RunRequest,
    Step,
    Tracker,
)
from tork_ray.runtime.docker_exec import format_bytes
from tork_ray.runtime.docker_images import image_lock, registry_host
from tork_ray.runtime.mounts import check_mounts, ensure_bind_sources
from tork_ray.runtime.podman_spec import (
    OUTPUT_FILE,
    PODMAN,
    TORK_DIR,
    authfile_json,
    check_request,
    container_env,
    container_name,
    create_argv,
    env_file_path,
    env_file_text,
    label_filters,
    podman_env,
    pull_argv,
    ulimits,
    volume_create_argv,
)
from tork_ray.runtime.shellwrap import SHELL, ImageConfig, ShellCache, no_shell_note, plan_wrap
from tork_ray.runtime.stepenv import Wrap, write_env_script
from tork_ray.runtime.waiting import Deadline, in_thread, shielded, wait_process
from tork_ray.runtime.workspace import LineTail, ProgressWatcher, files_tar, prepare, private_dir, read_output
from tork_ray.settings import RuntimeSettings

logger = logging.getLogger(__name__)

ERROR_TAIL_LINES = 10
CALL_TIMEOUT = 120.0
NOT_FOUND = "OCI runtime attempted to invoke a command that was not found"


def podman(
    *args: str,
    stdin: bytes | None = None,
    check: bool = True,
    timeout: float = CALL_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> str:
    """Runs one podman command to its end; its stdout, stripped. A failure names the command and says why.
    `env` is added to podman's own environment (values named by `--env NAME`, kept off the command line)."""
    environment = {**os.environ, **env} if env else None
    try:
        done = subprocess.run(
            [PODMAN, *args], input=stdin, capture_output=True, timeout=timeout, check=False, env=environment
        )
    except FileNotFoundError:
        raise RuntimeFailure("podman is not installed on this node") from None
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"podman {args[0]} did not answer within {timeout:.0f}s") from None
    if check and done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeFailure(f"podman {args[0]} failed: {reason[-1] if reason else done.returncode}")
    return done.stdout.decode(errors="replace").strip()


class PodmanRuntime:
    """One container per step; volumes made per task; everything labelled and removed at the end."""

    kind = "podman"

    def __init__(self, settings: RuntimeSettings | None = None, *, tracker: Tracker | None = None) -> None:
        self.settings = settings or RuntimeSettings(type="podman")
        self.tracker: Tracker = tracker or NoTracker()
        self.limits = ulimits()
        self.image_configs: dict[str, ImageConfig] = {}  # the config of each image a task ran, as it was then
        self.shells = ShellCache()

    def run(
        self, request: RunRequest, log: LogSink, progress: ProgressSink, cancelled: CancelProbe | None = None
    ) -> str:
        check_request(request, self.settings)
        check_mounts(request.mounts, self.settings)
        deadline = Deadline(request.timeout_seconds, cancelled)
        for step in {step.image: step for step in request.steps}.values():
            self.image_configs[step.image] = self.ensure_image(step.image, step.registry, deadline)
        workspace = Path(tempfile.mkdtemp(prefix=f"tork-{request.task_id}-"))
        action = {"kind": "podman", "labels": request.run_labels(), "workspace": str(workspace)}
        self.tracker.track(request.task_id, action)
        swept = False
        try:
            ensure_bind_sources(request.mounts)
            volumes = self._create_volumes(request)
            for index, step in enumerate(request.pre):
                self._run_step(request, step, f"pre-{index}", workspace, volumes, log, None, deadline)
            result = self._run_step(request, request.main, "main", workspace, volumes, log, progress, deadline)
            for index, step in enumerate(request.post):
                self._run_step(request, step, f"post-{index}", workspace, volumes, log, None, deadline)
            # Each step removed its own container: only volumes are left to sweep (three podman calls saved).
            swept = not volumes
            return result
        finally:
            if not swept:
                shielded(lambda: _quiet_remove(request.run_labels()))
            shutil.rmtree(workspace, ignore_errors=True)
            self.tracker.untrack(request.task_id)

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int:
        return remove_labelled({LABEL_SCOPE: scope}, keep=live_task_ids)

    def ensure_image(self, image: str, registry: Registry | None, deadline: Deadline) -> ImageConfig:
        """Pulls `image` unless present; one pull per image per node at a time, as on Docker. Its config
        (what it runs, its env) comes with the same call that finds it present."""
        config = _image_config(image)
        if config is None:
            in_thread(lambda: self._locked_pull(image, registry), deadline, name="tork-image-pull")
            config = _image_config(image)
        if config is None:
            raise RuntimeFailure(f"image {image} is gone right after its pull")
        return config

    def _locked_pull(self, image: str, registry: Registry | None) -> None:
        with image_lock(f"podman:{image}"), tempfile.TemporaryDirectory(prefix="tork-auth-") as directory:
            if _image_config(image) is not None:  # another worker pulled it while we waited for the lock
                return
            authfile = self.settings.docker_config
            if registry is not None:
                authfile = os.path.join(directory, "auth.json")
                Path(authfile).write_text(authfile_json(registry_host(image), registry))
            try:
                podman(*pull_argv(image, authfile)[1:], timeout=3600)
            except RuntimeFailure as exc:
                raise RuntimeFailure(f"error pulling image {image}: {exc.message}") from None

    def _create_volumes(self, request: RunRequest) -> dict[int, str]:
        volumes: dict[int, str] = {}
        for index, mount in enumerate(request.mounts):
            if mount.type == "volume":
                name = f"tork-{request.task_id}-{index}"
                podman(*volume_create_argv(request, index, mount, name)[1:])
                volumes[index] = name
        return volumes

    def _plan_wrap(self, request: RunRequest, step: Step, log: LogSink) -> Wrap | None:
        """How a step with env to hide and no shell of its own is wrapped. None when it needs none, or when
        its env must stay visible: its log then says why."""
        image = self.image_configs[step.image]
        plan = plan_wrap(step, TORK_DIR, image, podman_env(step, wrapped=True), "podman")
        if plan.note:
            log(plan.note)
        if plan.wrap is not None and self.shells.get(image, request.mounts) is False:
            log(no_shell_note(step, step.image, "podman"))
            return None
        return plan.wrap

    def _has_shell(self, request: RunRequest, step: Step, container: str) -> bool:
        """Whether the wrapped container can run its /bin/sh: known for its image, else tried (and remembered)."""
        image = self.image_configs[step.image]
        found = self.shells.get(image, request.mounts)
        if found is None:
            found = _init_has_shell(container)
            self.shells.put(image, request.mounts, found)
        return found

    def _create(
        self, request: RunRequest, step: Step, label: str, tork_dir: Path, volumes: dict[int, str], wrap: Wrap | None
    ) -> str:
        """`podman create` of one step; its id. Its env: the env script, an --env-file, podman's environment."""
        write_env_script(tork_dir, step, wrap)
        in_file, inherited = container_env(step, wrapped=wrap is not None)
        env_file = env_file_path(tork_dir)
        env_file.unlink(missing_ok=True)
        if in_file:
            _write_private(env_file, env_file_text(in_file))
        argv = create_argv(
            request,
            step,
            name=container_name(request, label),
            tork_dir=tork_dir,
            volumes=volumes,
            settings=self.settings,
            limits=self.limits,
            wrap=wrap,
        )
        return podman(*argv[1:], env=inherited)

    def _run_step(
        self,
        request: RunRequest,
        step: Step,
        label: str,
        workspace: Path,
        volumes: dict[int, str],
        log: LogSink,
        progress: ProgressSink | None,
        deadline: Deadline,
    ) -> str:
        deadline.check()
        tork_dir = workspace / label
        files_dir = None if request.workdir else tork_dir / "workdir"
        prepare(tork_dir, step, files_dir=files_dir, output_file=OUTPUT_FILE)
        wrap = self._plan_wrap(request, step, log)
        make = functools.partial(self._create, request, step, label, tork_dir, volumes)
        container = make(wrap)
        try:
            if wrap is not None and not self._has_shell(request, step, container):
                # Nothing to source the file with: made again the old way, its env given by --env-file.
                _quiet_remove_container(container)
                log(no_shell_note(step, step.image, "podman"))
                container = make(None)
            if step.files and request.workdir:
                podman("cp", "-", f"{container}:/", stdin=files_tar(request.workdir, step.files))
            # conmon drops its `oom` marker in this cwd, following symlinks: not in /tork, which the task can write.
            _attach(container, log, ProgressWatcher(tork_dir, progress), deadline, cwd=private_dir(workspace, label))
            return read_output(tork_dir, OUTPUT_FILE)
        finally:
            shielded(lambda: _quiet_remove_container(container))


def _write_private(path: Path, text: str) -> None:
    """A file only the worker's user can read (0600 from its creation, not chmod-ed after)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _attach(container: str, log: LogSink, progress: ProgressWatcher, deadline: Deadline, cwd: Path) -> None:
    """`podman start --attach`: the container's output is this process's, its exit code this process's."""
    # Run in the task's own directory: conmon (cgroup v1, runc) drops an `oom` marker file in its working
    # directory when the OOM killer strikes, which would otherwise land wherever the worker happened to be.
    process = subprocess.Popen(
        [PODMAN, "start", "--attach", container],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    tail = LineTail(ERROR_TAIL_LINES)
    assert process.stdout is not None
    pump = threading.Thread(target=_pump, args=(process, log, tail), name="tork-podman-log", daemon=True)
    pump.start()
    try:
        code = wait_process(process, deadline, progress.poll)
    finally:
        if process.poll() is None:  # cancel or timeout: the container goes, and its attach with it
            podman("rm", "--force", "--time", "0", container, check=False)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        pump.join(timeout=5)
    if code != 0:
        raise RuntimeFailure(_exit_error(container, code, tail.lines()))


def _pump(process: subprocess.Popen[bytes], log: LogSink, tail: LineTail) -> None:
    assert process.stdout is not None
    with process.stdout:
        while chunk := os.read(process.stdout.fileno(), 65536):
            text = chunk.decode(errors="replace")
            tail.feed(text)
            log(text)


def _exit_error(container: str, code: int, lines: list[str]) -> str:
    state = podman("inspect", "--format", "{{.State.OOMKilled}} {{.HostConfig.Memory}}", container, check=False)
    oom, _, memory = state.partition(" ")
    limit = int(memory) if memory.isdigit() else 0
    # conmon does not always see the kernel's OOM kill (cgroup v1): a SIGKILL (137) under a memory limit,
    # that we did not send, is the OOM killer's.
    if oom == "true" or (code == 137 and limit):
        where = f" of {format_bytes(limit)}" if limit else ""
        return f"out of memory: the task was killed at its memory limit{where} (exit code {code})"
    text = "\n".join(lines)
    return f"container exited with code {code}: {text}" if text else f"container exited with code {code}"


def _quiet_remove(labels: dict[str, str]) -> None:
    try:
        remove_labelled(labels)
    except RuntimeFailure as exc:  # clean-up carries on; the reaper or the next start sweeps again
        logger.warning("podman clean-up: %s", exc.message)


def _quiet_remove_container(container: str) -> None:
    podman("rm", "--force", "--time", "0", "--volumes", container, check=False)


def _image_config(image: str) -> ImageConfig | None:
    """The image's Entrypoint, Cmd and Env; None when it is not present (`podman image exists`' one call)."""
    found = subprocess.run(
        [PODMAN, "image", "inspect", "--format", "{{.Id}} {{json .Config}}", image], capture_output=True, check=False
    )
    if found.returncode != 0:
        return None
    image_id, _, text = found.stdout.decode(errors="replace").strip().partition(" ")
    try:
        config = json.loads(text or "null")
    except ValueError:
        config = None
    return ImageConfig.parse(config if isinstance(config, dict) else None, image_id)


def _init_has_shell(container: str) -> bool:
    """`podman init` of a wrapped container: the OCI runtime makes it, and so finds its entrypoint, /bin/sh,
    without running anything. False only when that is missing; any other failure is the start's to report,
    as it would have been without the wrapper."""
    try:
        done = subprocess.run([PODMAN, "init", container], capture_output=True, timeout=CALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"podman init did not answer within {CALL_TIMEOUT:.0f}s") from None
    if done.returncode == 0:
        return True
    error = done.stderr.decode(errors="replace")
    # Podman's own words for an entrypoint the OCI runtime cannot find, whichever runtime (runc, crun) said it.
    return NOT_FOUND not in error and not (SHELL in error and "no such file" in error.lower())


def remove_labelled(labels: dict[str, str], keep: set[str] | None = None) -> int:
    """Removes the containers, then the volumes, that carry all `labels` (except those of tasks in `keep`)."""
    kept = keep or set()
    removed = 0
    task_label = f'{{{{index .Labels "{LABEL_TASK}"}}}}'
    listing = podman("ps", "--all", *label_filters(labels), "--format", f"{{{{.ID}}}} {task_label}")
    for line in listing.splitlines():
        container, _, task_id = line.partition(" ")
        if container and task_id not in kept:
            podman("rm", "--force", "--time", "0", "--volumes", container, check=False)
            removed += 1
    volumes = podman("volume", "ls", *label_filters(labels), "--format", f"{{{{.Name}}}} {task_label}")
    for line in volumes.splitlines():
        volume, _, task_id = line.partition(" ")
        if volume and task_id not in kept:
            podman("volume", "rm", "--force", volume, check=False)
            removed += 1
    return removed
