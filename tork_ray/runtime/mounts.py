"""Pure checks of a task's mounts against the node's settings: bind mounts, their allow-list, engine sockets."""

from __future__ import annotations

import os
import posixpath

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Mount
from tork_ray.settings import RuntimeSettings

MOUNT_TYPES = ("volume", "bind", "tmpfs")
# A container that can reach an engine's socket can start a privileged container: root on the host.
ENGINE_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock", "/var/run/podman/podman.sock")


def check_mounts(mounts: tuple[Mount, ...], settings: RuntimeSettings) -> None:
    """Raises RuntimeFailure naming the first mount the settings do not allow."""
    for index, mount in enumerate(mounts):
        where = f"mounts[{index}]"
        if mount.type not in MOUNT_TYPES:
            raise RuntimeFailure(f"{where}: unknown mount type '{mount.type}' (one of {', '.join(MOUNT_TYPES)})")
        if not mount.target or not mount.target.startswith("/"):
            raise RuntimeFailure(f"{where}: target must be an absolute path, got '{mount.target}'")
        if mount.type == "tmpfs" and mount.source:
            raise RuntimeFailure(f"{where}: a tmpfs mount has no source")
        if mount.type == "bind":
            _check_bind(where, mount, settings)


def _check_bind(where: str, mount: Mount, settings: RuntimeSettings) -> None:
    if not settings.bind_allowed:
        raise RuntimeFailure(f"{where}: bind mounts are not allowed on this node (setting mounts.bind.allowed)")
    if not mount.source or not mount.source.startswith("/"):
        raise RuntimeFailure(f"{where}: a bind mount needs an absolute source path, got '{mount.source}'")
    if settings.bind_sources and not is_listed(mount.source, settings.bind_sources):
        raise RuntimeFailure(f"{where}: bind source {mount.source} is not in the allowed sources (mounts.bind.sources)")
    socket = exposed_socket(mount.source)
    if socket and not settings.bind_docker_socket:
        raise RuntimeFailure(
            f"{where}: bind source {mount.source} would expose the container engine socket {socket}; "
            "not allowed (setting mounts.bind.docker.socket)"
        )


def is_listed(source: str, allowed: tuple[str, ...]) -> bool:
    """Tork's rule: a case-insensitive exact match with one of the allowed sources."""
    return any(source.lower() == entry.lower() for entry in allowed)


def exposed_socket(source: str, sockets: tuple[str, ...] = ENGINE_SOCKETS) -> str:
    """The engine socket a bind of `source` would reach (the socket itself or a directory above it), or ""."""
    candidates = {posixpath.normpath(source), os.path.realpath(source)}
    for socket in sockets:
        for path in {socket, os.path.realpath(socket)}:
            for candidate in candidates:
                if path == candidate or path.startswith(candidate.rstrip("/") + "/"):
                    return socket
    return ""


def ensure_bind_sources(mounts: tuple[Mount, ...]) -> None:
    """Tork creates a missing bind source directory; an existing file or directory is left as it is."""
    for mount in mounts:
        if mount.type == "bind" and not os.path.exists(mount.source):
            os.makedirs(mount.source, exist_ok=True)
