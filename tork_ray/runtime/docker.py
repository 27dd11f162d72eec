"""The Docker runtime: sidecars, then one container per step (pre, main, post); labelled, always removed."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from docker.models.containers import Container

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import (
    LABEL_SCOPE,
    CancelProbe,
    LogSink,
    NoTracker,
    ProgressSink,
    RunRequest,
    Sidecar,
    Step,
    Tracker,
)
from tork_ray.runtime.docker_daemon import (
    DAEMON_WAIT_SECONDS,
    DockerGone,
    answers,
    daemon_gone,
    gone_error,
    remove_later,
    wait_for_daemon,
)
from tork_ray.runtime.docker_exec import pump_prefixed, run_to_exit, start
from tork_ray.runtime.docker_image_gc import ImageRecord, Pruner
from tork_ray.runtime.docker_images import ImagePuller
from tork_ray.runtime.docker_resources import TaskResources, quietly, remove_labelled
from tork_ray.runtime.docker_spec import (
    TORK_DIR,
    Networking,
    container_args,
    files_in_tork_dir,
    image_refs,
    networking,
    slug,
    step_env,
)
from tork_ray.runtime.docker_wrap import container_has_shell, image_config
from tork_ray.runtime.gpus import parse_gpus
from tork_ray.runtime.mounts import check_mounts, ensure_bind_sources
from tork_ray.runtime.probe import wait_ready
from tork_ray.runtime.shellwrap import ImageConfig, ShellCache, no_shell_note, plan_wrap
from tork_ray.runtime.stepenv import Wrap, wants_wrapper, write_env_script
from tork_ray.runtime.waiting import Deadline, shielded
from tork_ray.runtime.workspace import ProgressWatcher, files_tar, prepare, read_output
from tork_ray.settings import RuntimeSettings


class DockerRuntime:
    """Runs a task's containers with the Docker SDK; one instance (and one client) per worker process."""

    kind = "docker"

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        *,
        client: docker.DockerClient | None = None,
        tracker: Tracker | None = None,
        record: ImageRecord | None = None,
    ) -> None:
        self.settings = settings or RuntimeSettings()
        self.client = client or make_client(self.settings.docker_host)
        self.tracker: Tracker = tracker or NoTracker()
        record = record or ImageRecord()  # the node's record of pulled images; tests give their own
        self.images = ImagePuller(
            self.client, self.settings.docker_config, verify=self.settings.docker_image_verify, record=record
        )
        self.pruner = Pruner(self.client, record, self.settings.image_ttl_seconds())
        self.shells = ShellCache()  # which images have a /bin/sh, for wrapping shell-less steps

    # --- the Runtime contract -------------------------------------------------------------------------

    def run(
        self, request: RunRequest, log: LogSink, progress: ProgressSink, cancelled: CancelProbe | None = None
    ) -> str:
        check_request(request, self.settings)
        deadline = Deadline(request.timeout_seconds, cancelled)
        # An engine that is restarting is waited for (bounded): a retry must not fail because it came too soon.
        wait_for_daemon(self.client, deadline)
        try:
            return self._run(request, log, progress, deadline)
        except DockerGone:
            self._await_return(deadline)
            raise
        except (requests.exceptions.RequestException, DockerException) as exc:
            if not daemon_gone(exc):  # any call of the run may be the one the engine's going away cuts off
                raise
            self._await_return(deadline)
            raise gone_error(exc, "during the task") from None

    def _await_return(self, deadline: Deadline) -> None:
        """The attempt fails once the engine is back (or after DAEMON_WAIT_SECONDS): a retry launched at once
        would otherwise meet the engine still shutting down, and spend the task's retries in seconds."""
        with contextlib.suppress(DockerGone):
            wait_for_daemon(self.client, deadline)

    def _run(self, request: RunRequest, log: LogSink, progress: ProgressSink, deadline: Deadline) -> str:
        self.pruner.maybe_prune()  # a clock check; the pruning itself, when due, runs in its own thread
        for step in image_refs(request):
            self.images.ensure(step.image, step.registry, deadline, log, request.labels())
        task = _TaskRun(self, request, log, deadline)
        # Should this worker process die mid-task, the reaper removes by these labels what we leave.
        action = {"kind": "docker", "labels": request.run_labels(), "workspace": str(task.workspace)}
        self.tracker.track(request.task_id, action)
        failed = True
        try:
            result = task.run(progress)
            failed = False
            return result
        finally:
            shielded(lambda: task.resources.remove_all(sweep=failed))
            if task.resources.containers and answers(self.client) is not None:
                # The engine is away: it keeps the stopped container across its restart. Removed once it is back:
                # these very containers (by label could take a redelivered run's, which has the same task id).
                remove_later(partial(_remove_rest, task.resources), f"task {request.task_id}")
            task.join_sidecar_logs()
            shutil.rmtree(task.workspace, ignore_errors=True)
            self.tracker.untrack(request.task_id)

    def remove_orphans(self, scope: str, live_task_ids: set[str] | None = None) -> int:
        """Removes the scope's containers, networks and volumes whose task is not live (all when None)."""
        return remove_labelled(self.client, {LABEL_SCOPE: scope}, keep=live_task_ids)


class _TaskRun:
    """One task's run: its workspace on the host, what it made in Docker, where its containers attach."""

    def __init__(self, runtime: DockerRuntime, request: RunRequest, log: LogSink, deadline: Deadline) -> None:
        self.request = request
        self.privileged = runtime.settings.docker_privileged
        self.images = runtime.images
        self.resources = TaskResources(runtime.client, request)
        self.workspace = Path(tempfile.mkdtemp(prefix=f"tork-{request.task_id}-"))
        self.log = log
        self.deadline = deadline
        self.volumes: dict[int, str] = {}
        self.net = Networking()
        self.sidecar_logs: list[threading.Thread] = []
        self.shells = runtime.shells

    def run(self, progress: ProgressSink) -> str:
        request = self.request
        ensure_bind_sources(request.mounts)
        self.volumes = self.resources.create_volumes()
        self.net = networking(request, self.resources.create_network() if request.sidecars else None)
        for index, sidecar in enumerate(request.sidecars):
            self.start_sidecar(sidecar, f"sidecar-{index}")
        for index, step in enumerate(request.pre):
            self.run_step(step, f"pre-{index}", None)
        result = self.run_step(request.main, "main", progress)
        for index, step in enumerate(request.post):
            self.run_step(step, f"post-{index}", None)
        return result

    def create(self, step: Step, label: str, sidecar: Sidecar | None = None) -> tuple[Container, Path]:
        request, tork_dir = self.request, self.workspace / label
        prepare(tork_dir, step, files_dir=tork_dir / "workdir" if files_in_tork_dir(request) else None)
        wrap, image = self.plan_wrap(step)
        container = self.create_container(step, tork_dir, sidecar, wrap)
        if wrap is not None and not self.has_shell(image, container):
            # Nothing to source the file with: made again the old way, its env in its configuration.
            self.resources.remove_container(container)
            self.log(no_shell_note(step, step.image, "docker"))
            container = self.create_container(step, tork_dir, sidecar, None)
        self.resources.connect(container, self.net.others, slug(step.name))
        if step.files and not files_in_tork_dir(request):
            container.put_archive("/", files_tar(request.workdir, step.files))
        return container, tork_dir

    def plan_wrap(self, step: Step) -> tuple[Wrap | None, ImageConfig]:
        """How a step with env to hide and no shell of its own is wrapped, and its image's config (needed to
        know what it runs). No wrap when it needs none, or when its env must stay visible: its log says why."""
        if not wants_wrapper(step):
            return None, ImageConfig()
        try:
            image = image_config(self.resources.client, step.image)
        except ImageNotFound:  # removed since we last looked: pull it again, once
            self.images.forget(step.image)
            self.images.ensure(step.image, step.registry, self.deadline, self.log, self.request.labels())
            image = image_config(self.resources.client, step.image)
        plan = plan_wrap(step, TORK_DIR, image, step_env(step, wrapped=True), "docker")
        if plan.note:
            self.log(plan.note)
        elif plan.wrap is not None and self.shells.get(image, self.request.mounts) is False:
            self.log(no_shell_note(step, step.image, "docker"))
            return None, image
        return plan.wrap, image

    def has_shell(self, image: ImageConfig, container: Container) -> bool:
        """Whether the wrapped container can run its /bin/sh: known for its image, else looked up and remembered."""
        found = self.shells.get(image, self.request.mounts)
        if found is None:
            found = container_has_shell(self.resources.client, container.id)
            self.shells.put(image, self.request.mounts, found)
        return found

    def create_container(self, step: Step, tork_dir: Path, sidecar: Sidecar | None, wrap: Wrap | None) -> Container:
        request = self.request
        write_env_script(tork_dir, step, wrap)  # the env the launcher sources: never in the container's config
        args = container_args(
            request,
            step,
            tork_dir=tork_dir,
            volumes=self.volumes,
            net=self.net,
            privileged=self.privileged,
            sidecar=sidecar,
            wrap=wrap,
        )
        try:
            return self.resources.create_container(args)
        except ImageNotFound:  # removed since we last looked: pull it again, once
            self.images.forget(step.image)
            self.images.ensure(step.image, step.registry, self.deadline, self.log, request.labels())
            return self.resources.create_container(args)

    def run_step(self, step: Step, label: str, progress: ProgressSink | None) -> str:
        self.deadline.check()
        container, tork_dir = self.create(step, label)
        try:
            run_to_exit(container, self.log, ProgressWatcher(tork_dir, progress), self.deadline)
            return read_output(tork_dir)
        finally:
            # Gone as soon as it is done: a post step must not wait beside a finished main container.
            # Quietly: an engine gone away keeps the container; the run's end has it removed once it is back.
            shielded(lambda: quietly(self.resources.remove_container, container))

    def join_sidecar_logs(self, timeout: float = 2.0) -> None:
        """Lets the sidecars' last lines reach the log; only ever waits on a task that had sidecars."""
        end = time.monotonic() + timeout
        for pump in self.sidecar_logs:
            pump.join(max(0.0, end - time.monotonic()))

    def start_sidecar(self, sidecar: Sidecar, label: str) -> None:
        self.deadline.check()
        container, _ = self.create(sidecar.step, label, sidecar)
        start(container)
        # Its output joins the task's log, each line marked with its name; the stream ends with the container.
        pump = threading.Thread(
            target=pump_prefixed, args=(container, self.log, sidecar.step.name), name="tork-sidecar-log", daemon=True
        )
        pump.start()
        self.sidecar_logs.append(pump)
        if sidecar.probe is None:
            return
        container.reload()
        bindings = (container.ports or {}).get(f"{sidecar.probe.port}/tcp") or []
        if not bindings:
            raise RuntimeFailure(f"sidecar {sidecar.step.name}: port {sidecar.probe.port} was not published")
        url = f"http://127.0.0.1:{bindings[0]['HostPort']}{_path(sidecar.probe.path)}"
        wait_ready(url, sidecar.probe.timeout_seconds, self.deadline, lambda: _gone(container, sidecar.step.name))


def make_client(host: str = "") -> docker.DockerClient:
    """The engine at `host` (runtime.docker.host), else DOCKER_HOST's or the default socket. One that is
    restarting is waited for: the SDK asks the engine its API version as it makes the client."""
    give_up = time.monotonic() + DAEMON_WAIT_SECONDS
    while True:
        try:
            return docker.DockerClient(base_url=host) if host else docker.from_env()
        except DockerException as exc:
            if not daemon_gone(exc) or time.monotonic() >= give_up:
                raise gone_error(exc, f"(waited {DAEMON_WAIT_SECONDS:g}s for it)") from None
            time.sleep(0.2)


def _remove_rest(resources: TaskResources) -> bool:
    resources.remove_all()
    return not resources.containers


def check_request(request: RunRequest, settings: RuntimeSettings) -> None:
    """Everything that can be refused before anything is made: mounts, the GPU request."""
    check_mounts(request.mounts, settings)
    if request.gpus:
        parse_gpus(request.gpus)


def _path(path: str) -> str:
    return path if path.startswith("/") else f"/{path or ''}"


def _gone(container: Container, name: str) -> str | None:
    container.reload()
    if container.status in ("exited", "dead"):
        code = container.attrs.get("State", {}).get("ExitCode")
        return f"sidecar {name} exited with code {code} before its probe succeeded"
    return None
