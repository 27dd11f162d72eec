"""Images: pulled only when absent, one pull per image per node at a time, with a registry's credentials."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import LABEL_MANAGED, LogSink, Registry
from tork_ray.runtime.docker_image_gc import ImageRecord
from tork_ray.runtime.waiting import Deadline, in_thread

log = logging.getLogger(__name__)

PRESENT_TTL = 30.0


def registry_host(image: str) -> str:
    """The registry an image reference names ("docker.io" when it names none), as Docker reads it."""
    host, _remote = docker.auth.resolve_repository_name(image)
    return str(host)


def auth_config(image: str, registry: Registry | None, config_path: str = "") -> dict[str, Any] | None:
    """The credentials for pulling `image`: the task's own, else the `runtime.docker.config` file's entry for
    the image's registry, else None (the SDK then reads the worker user's ~/.docker/config.json, as the CLI)."""
    if registry is not None:
        return {"username": registry.username, "password": registry.password}
    if not config_path:
        return None
    if not os.path.isfile(config_path):
        raise RuntimeFailure(f"runtime.docker.config: {config_path} is not a file")
    try:
        config = docker.auth.load_config(config_path=config_path)
        found = config.resolve_authconfig(registry_host(image))
    except (DockerException, ValueError, OSError) as exc:
        raise RuntimeFailure(f"runtime.docker.config: cannot read {config_path}: {exc}") from None
    return dict(found) if found else None


def lock_path(image: str) -> Path:
    """One lock file per image per host: every worker process of the node agrees on it."""
    digest = hashlib.sha1(image.encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"tork_ray-pull-{digest}.lock"


@contextmanager
def image_lock(image: str) -> Iterator[None]:
    with lock_path(image).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ImagePuller:
    """Pulls for one Docker client. `pulls` counts the pulls this object made (tests, benchmarks). With
    `verify`, a pulled image must make a container before it is used; `record` notes what was pulled and when
    each was last used (for runtime.docker.image.ttl)."""

    def __init__(
        self,
        client: docker.DockerClient,
        config_path: str = "",
        *,
        verify: bool = False,
        record: ImageRecord | None = None,
    ) -> None:
        self.client = client
        self.config_path = config_path
        self.verify = verify
        self.record = record
        self.pulls = 0
        self._seen: dict[str, float] = {}  # image -> when it was last known to be present

    def ensure(
        self,
        image: str,
        registry: Registry | None,
        deadline: Deadline,
        log_sink: LogSink | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Returns once `image` is present; pulls it if not, while no other worker of the node does. `labels`
        go on the verification container, so that crash clean-up finds it like the task's own."""
        self._note(lambda record: record.touch(image))
        # Seen lately: skip the daemon round trip. Removed since? The create says so and the caller forgets it.
        seen = self._seen.get(image)
        if (seen is not None and time.monotonic() - seen < PRESENT_TTL) or self.has(image):
            self._seen[image] = time.monotonic()
            return
        auth = auth_config(image, registry, self.config_path)
        # A pull can take minutes: it runs in a helper thread so that a cancel or the timeout still gets in.
        in_thread(lambda: self._locked_pull(image, auth, log_sink, labels or {}), deadline, name="tork-image-pull")
        self._seen[image] = time.monotonic()

    def forget(self, image: str) -> None:
        self._seen.pop(image, None)

    def has(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except ImageNotFound:
            return False

    def _locked_pull(
        self, image: str, auth: dict[str, Any] | None, log_sink: LogSink | None, labels: dict[str, str]
    ) -> None:
        with image_lock(image):
            if self.has(image):  # another worker pulled it while we waited for the lock
                return
            self.pulls += 1
            if log_sink is not None:
                log_sink(f"pulling image {image}\n")
            try:
                self.client.images.pull(image, auth_config=auth)
            except (APIError, DockerException) as exc:
                detail = exc.explanation if isinstance(exc, APIError) and exc.explanation else exc
                raise RuntimeFailure(f"error pulling image {image}: {detail}") from None
            if self.verify:
                verify_image(self.client, image, labels)
            self._note(lambda record: record.mark_pulled(image))

    def _note(self, change: Any) -> None:
        # The record only serves pruning: a file it cannot write must not fail the task.
        if self.record is not None:
            try:
                change(self.record)
            except OSError as exc:
                log.warning("image record %s: %s", self.record.path, exc)


def verify_image(client: docker.DockerClient, image: str, labels: dict[str, str]) -> None:
    """Creates (never starts) a container from a freshly pulled `image` and removes it again. An image that
    cannot make one is removed, and the task fails saying so, rather than every later task failing obscurely."""
    try:
        created = client.api.create_container(image=image, command=["true"], labels={LABEL_MANAGED: "true", **labels})
    except (APIError, DockerException) as exc:
        detail = exc.explanation if isinstance(exc, APIError) and exc.explanation else exc
        try:
            client.images.remove(image, force=True)
        except (APIError, DockerException) as removal:
            log.warning("could not remove image %s that failed verification: %s", image, removal)
        raise RuntimeFailure(f"image {image} failed verification: {detail}") from None
    try:
        client.api.remove_container(created["Id"], force=True)
    except (APIError, DockerException) as exc:  # the image is fine; the task's clean-up sweeps by label
        log.warning("could not remove verification container of %s: %s", image, exc)
