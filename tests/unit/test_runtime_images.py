"""Image pulls: credentials chosen without a daemon, and one pull per image at a time (a fake client)."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from docker.errors import ImageNotFound

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Registry
from tork_ray.runtime.docker_images import ImagePuller, auth_config, registry_host
from tork_ray.runtime.waiting import Deadline


def docker_config(tmp_path: Path, host: str, user: str, password: str) -> str:
    path = tmp_path / "config.json"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return str(path)


def test_registry_host() -> None:
    assert registry_host("busybox") == "docker.io"
    assert registry_host("library/busybox:1") == "docker.io"
    assert registry_host("127.0.0.1:5000/team/app:1") == "127.0.0.1:5000"
    assert registry_host("ghcr.io/org/app@sha256:" + "a" * 64) == "ghcr.io"
    assert registry_host("localhost/app") == "localhost"


def test_task_credentials_win(tmp_path: Path) -> None:
    config = docker_config(tmp_path, "127.0.0.1:5000", "fromfile", "x")
    assert auth_config("127.0.0.1:5000/a", Registry("u", "p"), config) == {"username": "u", "password": "p"}


def test_config_file_entry_for_the_image_registry(tmp_path: Path) -> None:
    config = docker_config(tmp_path, "127.0.0.1:5000", "fromfile", "s3cret")
    found = auth_config("127.0.0.1:5000/team/app:1", None, config)
    assert found is not None
    assert (found["username"], found["password"]) == ("fromfile", "s3cret")
    assert auth_config("other.example/app", None, config) is None


def test_no_credentials_anywhere() -> None:
    assert auth_config("busybox", None, "") is None


def test_missing_or_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match=r"runtime.docker.config: /nope/config.json is not a file"):
        auth_config("busybox", None, "/nope/config.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"auths": {"h": {"auth": "not base64!"}}}))
    with pytest.raises(RuntimeFailure, match="cannot read"):
        auth_config("h/app", None, str(broken))


class FakeImages:
    """Counts pulls; a pull takes a moment, during which others may ask for the same image."""

    def __init__(self) -> None:
        self.present: set[str] = set()
        self.pulls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.in_pull = threading.Event()

    def get(self, image: str) -> None:
        if image not in self.present:
            raise ImageNotFound(image)

    def pull(self, image: str, auth_config: Any = None) -> None:
        with self.lock:
            self.pulls.append((image, auth_config))
        self.in_pull.set()
        threading.Event().wait(0.3)  # a slow registry
        self.present.add(image)


class FakeClient:
    def __init__(self) -> None:
        self.images = FakeImages()


def test_concurrent_ensures_pull_once_and_pass_credentials() -> None:
    client = FakeClient()
    pullers = [ImagePuller(client) for _ in range(4)]
    image = "127.0.0.1:5999/unit/app:lock-test"
    threads = [threading.Thread(target=p.ensure, args=(image, Registry("u", "p"), Deadline(None))) for p in pullers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert client.images.pulls == [(image, {"username": "u", "password": "p"})]
    assert sum(p.pulls for p in pullers) == 1


def test_present_image_is_not_pulled() -> None:
    client = FakeClient()
    client.images.present.add("busybox")
    puller = ImagePuller(client)
    puller.ensure("busybox", None, Deadline(None))
    assert client.images.pulls == []


def test_a_slow_pull_gives_way_to_the_task_timeout() -> None:
    client = FakeClient()
    puller = ImagePuller(client)
    with pytest.raises(RuntimeFailure, match="deadline exceeded"):
        puller.ensure("slow/image", None, Deadline(0.05))


def test_a_recently_seen_image_is_not_asked_for_again() -> None:
    client = FakeClient()
    client.images.present.add("busybox")
    asked: list[str] = []
    original = client.images.get

    def get(image: str) -> None:
        asked.append(image)
        original(image)

    client.images.get = get  # type: ignore[method-assign]
    puller = ImagePuller(client)
    for _ in range(3):
        puller.ensure("busybox", None, Deadline(None))
    assert asked == ["busybox"]
    puller.forget("busybox")  # a create said "no such image": look again next time
    puller.ensure("busybox", None, Deadline(None))
    assert asked == ["busybox", "busybox"]
