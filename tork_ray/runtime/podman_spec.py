"""Pure builders of the `podman` command lines the Podman runtime runs (one argv per call, nothing executed)."""

from __future__ import annotations

import base64
import json
import os
import resource
from decimal import Decimal
from pathlib import Path

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Mount, Registry, RunRequest, Step
from tork_ray.runtime.docker_spec import slug
from tork_ray.settings import RuntimeSettings

PODMAN = "podman"
TORK_DIR = "/tork"
DEFAULT_WORKDIR = "/tork/workdir"
OUTPUT_FILE = "output"  # Tork's Podman runtime names $TORK_OUTPUT /tork/output


def unsupported_fields(request: RunRequest) -> list[str]:
    return [name for name, present in (("sidecars", request.sidecars), ("gpus", request.gpus)) if present]


def check_request(request: RunRequest, settings: RuntimeSettings) -> None:
    unsupported = unsupported_fields(request)
    if unsupported:
        verb = "is" if len(unsupported) == 1 else "are"
        raise RuntimeFailure(f"{', '.join(unsupported)} {verb} not supported on podman runtime")
    for step in request.steps:
        if not step.image:
            raise RuntimeFailure(f"{step.name}: image is required on the podman runtime")
    if "host" in request.networks and not settings.podman_host_network:
        raise RuntimeFailure("network host is not allowed on this node (setting runtime.podman.host.network)")


def ulimits(pid_max_path: str = "/proc/sys/kernel/pid_max") -> list[str]:
    """The worker's own open-files and process limits, passed on explicitly.

    Rootful Podman otherwise asks for nofile=1048576 and nproc=<hard>, which a host without CAP_SYS_RESOURCE
    (containers, sandboxes: this CI machine) refuses with `error setting rlimit ... operation not permitted`;
    and nproc above pid_max is refused even below the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    try:
        pid_max = int(Path(pid_max_path).read_text().strip())
    except (OSError, ValueError):
        pid_max = 32768
    procs = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    return ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", f"nproc={procs}:{procs}"]


def create_argv(
    request: RunRequest,
    step: Step,
    *,
    name: str,
    tork_dir: Path,
    volumes: dict[int, str],
    settings: RuntimeSettings,
    limits: list[str],
) -> list[str]:
    """`podman create ...` for one step; prints the container id."""
    argv = [PODMAN, "create", "--name", name, *limits]
    for key, value in request.labels().items():
        argv += ["--label", f"{key}={value}"]
    env = {**step.env, "TORK_OUTPUT": f"{TORK_DIR}/{OUTPUT_FILE}", "TORK_PROGRESS": f"{TORK_DIR}/progress"}
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    argv += ["--volume", f"{tork_dir}:{TORK_DIR}:rw"]
    for index, mount in enumerate(request.mounts):
        argv += ["--mount", mount_option(mount, volumes.get(index, ""))]
    workdir = request.workdir or (DEFAULT_WORKDIR if step.files else "")
    if workdir:
        argv += ["--workdir", workdir]
    argv += resource_options(request)
    argv += network_options(request, step)
    if settings.podman_privileged:
        argv.append("--privileged")
    entrypoint = list(step.entrypoint) or (["sh", "-c"] if step.run else [])
    if entrypoint:
        argv += ["--entrypoint", json.dumps(entrypoint)]
    command = list(step.cmd) or ([f"{TORK_DIR}/entrypoint"] if step.run else [])
    return [*argv, step.image, *command]


def mount_option(mount: Mount, volume: str) -> str:
    if mount.type == "volume":
        return f"type=volume,source={volume},target={mount.target}"
    if mount.type == "bind":
        return f"type=bind,source={mount.source},target={mount.target}"
    extra = "".join(f",tmpfs-{key}={mount.opts[key]}" for key in ("size", "mode") if mount.opts.get(key))
    return f"type=tmpfs,target={mount.target}{extra}"


def resource_options(request: RunRequest) -> list[str]:
    argv: list[str] = []
    if request.cpus_nano:
        argv += ["--cpus", str(Decimal(request.cpus_nano) / Decimal(1_000_000_000))]
    if request.memory_bytes:
        # No swap beyond the limit, as on Docker: an over-limit task is killed, not slowed to a crawl.
        argv += ["--memory", f"{request.memory_bytes}b", "--memory-swap", f"{request.memory_bytes}b"]
    return argv


def network_options(request: RunRequest, step: Step) -> list[str]:
    argv: list[str] = []
    for name in request.networks:
        argv += ["--network", name]
    if request.networks and not set(request.networks) & {"host", "none", "bridge"}:
        argv += ["--network-alias", slug(step.name)]
    return argv


def volume_create_argv(request: RunRequest, index: int, mount: Mount, name: str) -> list[str]:
    argv = [PODMAN, "volume", "create"]
    for key, value in request.labels().items():
        argv += ["--label", f"{key}={value}"]
    for key, value in mount.opts.items():
        argv += ["--opt", f"{key}={value}"]
    return [*argv, name]


def label_filters(labels: dict[str, str]) -> list[str]:
    return [arg for key, value in labels.items() for arg in ("--filter", f"label={key}={value}")]


def authfile_json(image_host: str, registry: Registry) -> str:
    """A containers-auth.json (Docker config format) holding just this registry's credentials: given to
    `podman pull --authfile`, never on the command line, where `ps` would show the password."""
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    return json.dumps({"auths": {image_host: {"auth": token}}})


def pull_argv(image: str, authfile: str = "") -> list[str]:
    return [PODMAN, "pull", "--quiet", *(["--authfile", authfile] if authfile else []), image]


def container_name(request: RunRequest, label: str) -> str:
    return f"tork-{request.task_id}-{label}-{os.getpid()}"
