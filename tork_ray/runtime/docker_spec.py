"""Pure builders of what the Docker runtime asks the daemon for: container, volume and network specs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.types import DeviceRequest, EndpointConfig
from docker.types import Mount as DockerMount

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Mount, RunRequest, Sidecar, Step
from tork_ray.runtime.gpus import parse_gpus
from tork_ray.runtime.stepenv import Wrap, declared_command, launched_by_shell, launcher, other_env, script_env, wrapper

TORK_DIR = "/tork"
DEFAULT_WORKDIR = "/tork/workdir"
# Networks a container joins by mode, not as an endpoint: no aliases, and they exclude every other network.
BUILTIN_NETWORKS = ("bridge", "host", "none")
API_VERSION = "1.41"  # the oldest Engine API we speak (Docker 20.10): the spec's features all exist there


def slug(name: str) -> str:
    """A task or sidecar name as a DNS label, the way Tork makes its network aliases ("My Web" -> "my-web")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "task"


def network_name(request: RunRequest) -> str:
    return f"tork-{request.task_id}"


def volume_name(request: RunRequest, index: int) -> str:
    return f"tork-{request.task_id}-{index}"


def step_env(step: Step, wrapped: bool = False) -> dict[str, str]:
    """The container's own Env: what the env script cannot carry (stepenv.py), and Tork's paths."""
    return {**other_env(step, wrapped), "TORK_OUTPUT": f"{TORK_DIR}/stdout", "TORK_PROGRESS": f"{TORK_DIR}/progress"}


def step_command(step: Step, wrap: Wrap | None = None) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, cmd): Tork runs `run` as `sh -c /tork/entrypoint` unless the task says otherwise; with env
    to hide, that `sh -c` first sources the step's env script (written by the runtime beside the script), and
    a step with no shell of its own is wrapped in one that does (`wrap`, shellwrap.py)."""
    if launched_by_shell(step) and script_env(step):
        return declared_command(step, TORK_DIR)[0], [launcher(TORK_DIR)]
    if wrap is not None:
        return wrapper(TORK_DIR), list(wrap.argv)
    return declared_command(step, TORK_DIR)


def files_in_tork_dir(request: RunRequest) -> bool:
    """Without a `workdir`, files go to /tork/workdir, which is part of the host directory mounted at /tork."""
    return not request.workdir


@dataclass(frozen=True)
class Networking:
    """Where a task's containers are attached: the first network at create, the others connected before start."""

    primary: str | None = None
    others: tuple[str, ...] = ()


def networking(request: RunRequest, task_network: str | None) -> Networking:
    names = [*([task_network] if task_network else []), *request.networks]
    names = list(dict.fromkeys(names))
    exclusive = [name for name in names if name in ("host", "none")]
    if exclusive and len(names) > 1:
        raise RuntimeFailure(f"network {exclusive[0]} cannot be combined with other networks ({', '.join(names)})")
    if not names:
        return Networking()
    return Networking(primary=names[0], others=tuple(names[1:]))


def docker_mounts(request: RunRequest, volumes: dict[int, str]) -> list[DockerMount]:
    """The task's mounts; `volumes` maps a volume mount's index to the Docker volume made for it."""
    mounts = []
    for index, mount in enumerate(request.mounts):
        mounts.append(_docker_mount(mount, volumes.get(index, "")))
    return mounts


def _docker_mount(mount: Mount, volume: str) -> DockerMount:
    if mount.type == "volume":
        return DockerMount(target=mount.target, source=volume, type="volume")
    if mount.type == "bind":
        return DockerMount(target=mount.target, source=mount.source, type="bind")
    mode = mount.opts.get("mode")
    return DockerMount(
        target=mount.target,
        source=None,
        type="tmpfs",
        tmpfs_size=mount.opts.get("size") or None,
        tmpfs_mode=int(mode, 8) if mode else None,
    )


def container_args(
    request: RunRequest,
    step: Step,
    *,
    tork_dir: Path,
    volumes: dict[int, str],
    net: Networking,
    privileged: bool,
    sidecar: Sidecar | None = None,
    wrap: Wrap | None = None,
) -> dict[str, Any]:
    """Keyword arguments of `client.containers.create` for one step (pre, main, post) or a sidecar; `wrap`
    when its env is sourced by a wrapper shell (shellwrap.py)."""
    entrypoint, command = step_command(step, wrap)
    args: dict[str, Any] = {
        "image": step.image,
        "entrypoint": entrypoint,
        "command": command,
        "environment": step_env(step, wrapped=wrap is not None),
        "working_dir": request.workdir or (DEFAULT_WORKDIR if step.files else None),
        "labels": request.labels(),
        "volumes": {str(tork_dir): {"bind": TORK_DIR, "mode": "rw"}},
        "mounts": docker_mounts(request, volumes),
        "privileged": privileged,
        "detach": True,
    }
    args.update(_limits(request))
    args.update(_network_args(net, step))
    if request.gpus:
        args["device_requests"] = [DeviceRequest(**parse_gpus(request.gpus).to_api())]
    if sidecar is not None and sidecar.probe is not None:
        # Published on loopback only, at a port the daemon picks: the probe comes from this host.
        args["ports"] = {f"{sidecar.probe.port}/tcp": ("127.0.0.1", None)}
    return args


def _limits(request: RunRequest) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if request.cpus_nano:
        args["nano_cpus"] = request.cpus_nano
    if request.memory_bytes:
        # No swap beyond the limit, so an over-limit task is killed (and says so) instead of thrashing.
        args["mem_limit"] = request.memory_bytes
        args["memswap_limit"] = request.memory_bytes
    return args


def _network_args(net: Networking, step: Step) -> dict[str, Any]:
    if net.primary is None:
        return {}
    if net.primary in BUILTIN_NETWORKS:
        return {"network_mode": net.primary}
    endpoint = EndpointConfig(API_VERSION, aliases=[slug(step.name)])
    return {"network": net.primary, "networking_config": {net.primary: endpoint}}


def volume_args(request: RunRequest, index: int, mount: Mount) -> dict[str, Any]:
    """Keyword arguments of `client.volumes.create` for the task's volume mount number `index`."""
    return {"name": volume_name(request, index), "driver_opts": dict(mount.opts), "labels": request.labels()}


def network_args(request: RunRequest) -> dict[str, Any]:
    """Keyword arguments of `client.networks.create` for the task's private bridge (made when it has sidecars)."""
    return {"name": network_name(request), "driver": "bridge", "labels": request.labels(), "check_duplicate": True}


def image_refs(request: RunRequest) -> list[Step]:
    """Every step whose image must be present before the task starts, each image once."""
    seen: dict[str, Step] = {}
    for step in (*request.pre, request.main, *request.post, *(sidecar.step for sidecar in request.sidecars)):
        if not step.image:
            raise RuntimeFailure(f"{step.name}: image is required on the docker runtime")
        seen.setdefault(step.image, step)
    return list(seen.values())
