"""What the Docker runtime asks the daemon to wrap a shell-less step (shellwrap.py): the image's config, and
whether a created container has a /bin/sh (a stat through the archive API: nothing is downloaded)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import docker
from docker.errors import APIError

from tork_ray.runtime.shellwrap import ImageConfig, has_shell

STAT_HEADER = "X-Docker-Container-Path-Stat"


def image_config(client: docker.DockerClient, image: str) -> ImageConfig:
    """The image's Entrypoint, Cmd and Env; raises ImageNotFound as a create would."""
    found = client.api.inspect_image(image)
    return ImageConfig.parse(found.get("Config"), str(found.get("Id") or ""))


def container_has_shell(client: docker.DockerClient, container_id: str) -> bool:
    """True when the (created, not started) container has an executable /bin/sh, its mounts included.

    `HEAD /containers/{id}/archive?path=...` answers a path's stat in a header: one round trip per symlink
    followed, and no byte of the file. An answer we cannot read counts as no shell: the step then runs
    unwrapped, as it always did, and its log says so.
    """

    def stat(path: str) -> Mapping[str, Any] | None:
        try:
            # docker-py has no call for this endpoint; `_url` is how its own calls build theirs.
            response = client.api.head(client.api._url("/containers/{0}/archive", container_id), params={"path": path})
        except (APIError, OSError):
            return None
        header = response.headers.get(STAT_HEADER)
        if response.status_code != 200 or not header:
            return None
        try:
            found = json.loads(base64.b64decode(header))
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    return has_shell(stat)
