"""Pulled images and their last use, in a node-local record; those unused past runtime.docker.image.ttl go."""

from __future__ import annotations

import fcntl
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, NotFound

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 600.0  # a node prunes at most this often
TOUCH_INTERVAL = 60.0  # a process rewrites an image's last use at most this often: the TTL is hours


def record_path() -> Path:
    """Beside the pull locks: every worker process of the node shares it."""
    return Path(tempfile.gettempdir()) / "tork_ray-images.json"


def expired_images(last_used: Mapping[str, float], now: float, ttl: float, in_use: set[str]) -> list[str]:
    """The recorded (pulled) images last used more than `ttl` seconds before `now` that no container uses.
    A ttl of 0 or less keeps everything."""
    if ttl <= 0:
        return []
    busy = {normalise(image) for image in in_use}
    return sorted(image for image, used in last_used.items() if now - used > ttl and normalise(image) not in busy)


def normalise(image: str) -> str:
    """`busybox` and `busybox:latest` are one image to Docker: compare them as one."""
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in image else f"{image}:latest"


class ImageRecord:
    """{"images": {reference: last use (epoch seconds)}, "pruned_at": epoch} in a JSON file, changed only
    under an exclusive file lock, so the node's worker processes never lose one another's updates."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or record_path()
        self._touched: dict[str, float] = {}  # image -> when this process last wrote its use (monotonic)

    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The record, read under the lock; what the caller leaves in it is written back."""
        with self.path.with_suffix(".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                yield data
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data))
                tmp.replace(self.path)  # readers never see half a file
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
            data = {"images": {}, "pruned_at": 0.0}
        return data

    def images(self) -> dict[str, float]:
        return dict(self._read()["images"])

    def mark_pulled(self, image: str, when: float | None = None) -> None:
        with self.locked() as data:
            data["images"][image] = time.time() if when is None else when
        self._touched[image] = time.monotonic()

    def touch(self, image: str) -> None:
        """Records a use of `image` if this node pulled it; cheap when done again within TOUCH_INTERVAL."""
        now = time.monotonic()
        if now - self._touched.get(image, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
            return
        self._touched[image] = now
        with self.locked() as data:
            if image in data["images"]:
                data["images"][image] = time.time()

    def forget(self, images: list[str]) -> None:
        with self.locked() as data:
            for image in images:
                data["images"].pop(image, None)
                self._touched.pop(image, None)

    def claim_prune(self, interval: float, now: float | None = None) -> bool:
        """True for the one process that should prune now: none did within `interval` on this node."""
        now = time.time() if now is None else now
        with self.locked() as data:
            if now - float(data.get("pruned_at") or 0.0) < interval:
                return False
            data["pruned_at"] = now
            return True


def images_in_use(client: docker.DockerClient) -> set[str]:
    """Image references of every container, running or not (one list call, no inspect per container)."""
    return {normalise(str(summary.get("Image", ""))) for summary in client.api.containers(all=True)}


def prune(client: docker.DockerClient, record: ImageRecord, ttl: float, now: float | None = None) -> list[str]:
    """Removes the recorded images unused for longer than `ttl`; returns those removed. Docker itself refuses
    (409) an image a container still uses under another name: that one is kept for a later round."""
    now = time.time() if now is None else now
    removed, gone = [], []
    for image in expired_images(record.images(), now, ttl, images_in_use(client)):
        try:
            client.images.remove(image)  # not forced: an image a container uses stays
            removed.append(image)
        except NotFound:
            gone.append(image)  # removed by someone else: nothing to keep a record of
        except (APIError, requests.exceptions.RequestException) as exc:
            log.info("keeping image %s: %s", image, exc)
    record.forget(removed + gone)
    return removed


class Pruner:
    """Prunes from the worker path without slowing it: a clock check per task, and at most once per
    PRUNE_INTERVAL per node a background thread that does the Docker calls."""

    def __init__(self, client: docker.DockerClient, record: ImageRecord, ttl: float) -> None:
        self.client = client
        self.record = record
        self.ttl = ttl
        self._next = 0.0  # monotonic: before it, this process does not even look at the record

    def maybe_prune(self, interval: float = PRUNE_INTERVAL) -> threading.Thread | None:
        now = time.monotonic()
        if self.ttl <= 0 or now < self._next:
            return None
        self._next = now + interval
        thread = threading.Thread(target=self._guarded(interval), name="tork-image-prune", daemon=True)
        thread.start()
        return thread

    def _guarded(self, interval: float) -> Callable[[], None]:
        def run() -> None:
            try:
                if self.record.claim_prune(interval):
                    removed = prune(self.client, self.record, self.ttl)
                    if removed:
                        log.info("pruned images unused for over %.0fs: %s", self.ttl, ", ".join(removed))
            except Exception:  # never the task's problem
                log.exception("image prune failed")

        return run
