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
from tork_ray.runtime.stepenv import Wrap, declared_command, launched_by_shell, launcher, other_env, script_env, wrapper
from tork_ray.settings import RuntimeSettings

PODMAN = "podman"
TORK_DIR = "/tork"
DEFAULT_WORKDIR = "/tork/workdir"
OUTPUT_FILE = "output"  # Tork's Podman runtime names $TORK_OUTPUT /tork/output
TORK_PATHS = {"TORK_OUTPUT": f"{TORK_DIR}/{OUTPUT_FILE}", "TORK_PROGRESS": f"{TORK_DIR}/progress"}


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
    wrap: Wrap | None = None,
) -> list[str]:
    """`podman create ...` for one step; prints the container id. `wrap` when the step's env is sourced by a
    wrapper shell (shellwrap.py)."""
    argv = [PODMAN, "create", "--name", name, *limits]
    for key, value in request.labels().items():
        argv += ["--label", f"{key}={value}"]
    # Only Tork's paths as values on the command line (`ps` shows it): the task's env comes from the env script
    # the launcher sources, an --env-file, or podman's own environment (container_env).
    for key, value in TORK_PATHS.items():
        argv += ["--env", f"{key}={value}"]
    in_file, inherited = container_env(step, wrapped=wrap is not None)
    if in_file:
        argv += ["--env-file", str(env_file_path(tork_dir))]
    for name in inherited:
        argv += ["--env", name]
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
    entrypoint, command = step_command(step, wrap)
    if entrypoint:
        argv += ["--entrypoint", json.dumps(entrypoint)]
    return [*argv, step.image, *command]


def step_command(step: Step, wrap: Wrap | None = None) -> tuple[list[str], list[str]]:
    """(entrypoint, cmd) as on Docker (docker_spec.step_command); empty ones leave the image's."""
    if launched_by_shell(step) and script_env(step):
        return declared_command(step, TORK_DIR)[0] or [], [launcher(TORK_DIR)]
    if wrap is not None:
        return wrapper(TORK_DIR), list(wrap.argv)
    entrypoint, command = declared_command(step, TORK_DIR)
    return entrypoint or [], command or []


def podman_env(step: Step, wrapped: bool) -> dict[str, str]:
    """Every variable the container is configured with by us (the image adds its own)."""
    return {**other_env(step, wrapped), **TORK_PATHS}


def env_file_path(tork_dir: Path) -> Path:
    """Beside the step's directory, not in it: read by podman on the host, never mounted into the container."""
    return tork_dir.parent / f"{tork_dir.name}.env"


def container_env(step: Step, wrapped: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """The env the env script cannot carry, split into (--env-file entries, podman's own environment).

    An env file holds one `NAME=value` per line, taken literally; a value with a line break cannot be written
    there, so it is put in podman's environment and named by `--env NAME` (podman copies it from there).
    """
    in_file: dict[str, str] = {}
    inherited: dict[str, str] = {}
    for name, value in other_env(step, wrapped).items():
        if "\n" not in value and "\r" not in value and name.strip() == name and not name.startswith("#"):
            in_file[name] = value
        elif name.endswith("*") or not name.strip():
            # `--env NAME*` would copy every variable of the worker whose name starts so: never.
            raise RuntimeFailure(f"env {name!r}: this name cannot carry a multi-line value on podman runtime")
        else:
            inherited[name] = value
    return in_file, inherited


def env_file_text(env: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in env.items())


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
