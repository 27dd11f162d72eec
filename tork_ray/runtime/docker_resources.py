"""What one task makes in Docker (containers, volumes, a network), and removing it: by handle, or by label."""

from __future__ import annotations

import logging
from typing import Any

import docker
import requests
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container, _create_container_args

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import LABEL_TASK, RunRequest
from tork_ray.runtime.docker_spec import BUILTIN_NETWORKS, network_args, volume_args

log = logging.getLogger(__name__)

CLEANUP_ERRORS = (APIError, requests.exceptions.RequestException)


class TaskResources:
    """Tracks what this task created so that `remove_all` can take it all away again, in a safe order."""

    def __init__(self, client: docker.DockerClient, request: RunRequest) -> None:
        self.client = client
        self.request = request
        self.containers: list[Container] = []
        self.volumes: dict[int, str] = {}  # mount index -> volume name
        self.network: Any = None

    def create_volumes(self) -> dict[int, str]:
        for index, mount in enumerate(self.request.mounts):
            if mount.type == "volume":
                args = volume_args(self.request, index, mount)
                try:
                    self.client.volumes.create(**args)
                except APIError as exc:
                    raise RuntimeFailure(f"mounts[{index}]: cannot create volume: {exc.explanation or exc}") from None
                self.volumes[index] = args["name"]
        return self.volumes

    def create_network(self) -> str:
        args = network_args(self.request)
        self.network = self.client.networks.create(**args)
        return str(args["name"])

    def create_container(self, args: dict[str, Any]) -> Container:
        """Like `client.containers.create`, without the inspect call it makes after: nothing here needs it.
        Lets ImageNotFound through (the caller may pull and try again)."""
        create_args = _create_container_args({**args, "version": self.client.api._version})
        try:
            created = self.client.api.create_container(**create_args)
        except ImageNotFound:
            raise
        except APIError as exc:
            raise RuntimeFailure(f"cannot create container: {exc.explanation or exc}") from None
        container: Container = self.client.containers.prepare_model({"Id": created["Id"]})
        self.containers.append(container)
        return container

    def connect(self, container: Container, networks: tuple[str, ...], alias: str) -> None:
        for name in networks:
            try:
                # Docker's own networks take no alias: it is a name on a network the task shares with others.
                aliases = None if name in BUILTIN_NETWORKS else [alias]
                self.client.networks.get(name).connect(container, aliases=aliases)
            except NotFound:
                raise RuntimeFailure(f"network {name} not found") from None
            except APIError as exc:
                raise RuntimeFailure(f"cannot attach network {name}: {exc.explanation or exc}") from None

    def remove_container(self, container: Container) -> None:
        remove_container(container)
        if container in self.containers:
            self.containers.remove(container)

    def remove_all(self, sweep: bool = False) -> None:
        """Containers first (a network or volume in use cannot go), then the network, then the volumes.
        `sweep` also removes by label whatever a cancel may have left untracked (created, not yet recorded)."""
        for container in list(self.containers):
            quietly(self.remove_container, container)
        if self.network is not None:
            quietly(self.network.remove)
        for name in self.volumes.values():
            quietly(lambda n=name: self.client.volumes.get(n).remove(force=True))
        if sweep:
            quietly(remove_labelled, self.client, self.request.run_labels())


def remove_container(container: Container) -> None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress
            raise


def remove_labelled(client: docker.DockerClient, labels: dict[str, str], keep: set[str] | None = None) -> int:
    """Removes every container, network and volume carrying all `labels`, except those of task ids in `keep`.
    Returns how many things were removed."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    kept = keep or set()
    removed = 0
    # ignore_removed: the SDK inspects each listed container, and a task's own clean-up may remove one in between.
    for container in client.containers.list(all=True, filters=filters, ignore_removed=True):
        if container.labels.get(LABEL_TASK) not in kept:
            remove_container(container)
            removed += 1
    for network in client.networks.list(filters=filters):
        if (network.attrs.get("Labels") or {}).get(LABEL_TASK) not in kept:
            quietly(network.remove)
            removed += 1
    for volume in client.volumes.list(filters=filters):
        if (volume.attrs.get("Labels") or {}).get(LABEL_TASK) not in kept:
            quietly(volume.remove, force=True)
            removed += 1
    return removed


def quietly(fn: Any, *args: Any, **kwargs: Any) -> None:
    # Clean-up carries on past one failure: the next resource must still go.
    try:
        fn(*args, **kwargs)
    except NotFound:
        pass
    except CLEANUP_ERRORS as exc:
        log.warning("docker clean-up: %s", exc)
