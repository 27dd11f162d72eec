"""Pulled images without a daemon: verification, the node's record of pulls and uses, which ones to prune;
and sidecar log lines marked with the sidecar's name."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError, ImageNotFound

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.docker_exec import LinePrefixer
from tork_ray.runtime.docker_image_gc import ImageRecord, Pruner, expired_images, normalise, prune
from tork_ray.runtime.docker_images import ImagePuller, verify_image
from tork_ray.runtime.waiting import Deadline

HOUR = 3600.0


def test_expired_images_are_old_and_unused() -> None:
    last_used = {"a:1": 0.0, "b:1": 0.0, "c:1": 9 * HOUR, "busybox": 0.0}
    assert expired_images(last_used, 10 * HOUR, 2 * HOUR, {"b:1", "busybox:latest"}) == ["a:1"]
    assert expired_images(last_used, 10 * HOUR, 0, set()) == []  # ttl 0: keep for ever
    assert expired_images(last_used, 1 * HOUR, 2 * HOUR, set()) == []


def test_normalise() -> None:
    assert normalise("busybox") == "busybox:latest"
    assert normalise("localhost:5000/app") == "localhost:5000/app:latest"
    assert normalise("localhost:5000/app:1") == "localhost:5000/app:1"
    assert normalise("app@sha256:" + "a" * 64) == "app@sha256:" + "a" * 64


def test_record_marks_touches_forgets_and_claims(tmp_path: Path) -> None:
    record = ImageRecord(tmp_path / "images.json")
    record.mark_pulled("a:1", when=100.0)
    other = ImageRecord(record.path)  # another worker process of the node
    other.touch("a:1")
    other.touch("never-pulled:1")
    images = record.images()
    assert set(images) == {"a:1"} and images["a:1"] > 100.0
    before = images["a:1"]
    other.touch("a:1")  # again within the touch interval: not written
    assert record.images()["a:1"] == before
    assert record.claim_prune(600, now=1000.0) is True
    assert other.claim_prune(600, now=1100.0) is False
    assert other.claim_prune(600, now=1700.0) is True
    record.forget(["a:1"])
    assert record.images() == {}
    assert json.loads(record.path.read_text())["pruned_at"] == 1700.0


def test_a_broken_record_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "images.json"
    path.write_text("not json")
    record = ImageRecord(path)
    assert record.images() == {}
    record.mark_pulled("x:1")
    assert set(record.images()) == {"x:1"}


class FakeApi:
    def __init__(self, fail_create: bool = False) -> None:
        self.fail_create = fail_create
        self.created: list[dict[str, Any]] = []
        self.removed: list[str] = []
        self.containers_in_use: list[dict[str, str]] = []

    def create_container(self, **kwargs: Any) -> dict[str, str]:
        if self.fail_create:
            raise APIError("bad", explanation="no such layer")
        self.created.append(kwargs)
        return {"Id": f"c{len(self.created)}"}

    def remove_container(self, container_id: str, force: bool = False) -> None:
        self.removed.append(container_id)

    def containers(self, all: bool = False) -> list[dict[str, str]]:
        return self.containers_in_use


class FakeImages:
    def __init__(self) -> None:
        self.present: set[str] = set()
        self.removed: list[str] = []

    def get(self, image: str) -> None:
        if image not in self.present:
            raise ImageNotFound(image)

    def pull(self, image: str, auth_config: Any = None) -> None:
        self.present.add(image)

    def remove(self, image: str, force: bool = False) -> None:
        if image not in self.present:
            raise ImageNotFound(image)
        self.present.discard(image)
        self.removed.append(image)


class FakeClient:
    def __init__(self, fail_create: bool = False) -> None:
        self.api = FakeApi(fail_create)
        self.images = FakeImages()


def test_verification_creates_and_removes_a_labelled_container() -> None:
    client = FakeClient()
    verify_image(client, "app:1", {"tork_ray.task-id": "t"})  # type: ignore[arg-type]
    assert client.api.created[0]["image"] == "app:1"
    assert client.api.created[0]["labels"] == {"tork_ray.managed": "true", "tork_ray.task-id": "t"}
    assert client.api.removed == ["c1"]


def test_an_image_failing_verification_is_removed_and_fails_the_task(tmp_path: Path) -> None:
    client = FakeClient(fail_create=True)
    record = ImageRecord(tmp_path / "images.json")
    puller = ImagePuller(client, verify=True, record=record)  # type: ignore[arg-type]
    with pytest.raises(RuntimeFailure) as caught:
        puller.ensure("app:1", None, Deadline(None))
    assert caught.value.message == "image app:1 failed verification: no such layer"
    assert client.images.removed == ["app:1"]
    assert record.images() == {}  # never recorded: it is gone


def test_a_pull_is_verified_and_recorded_a_present_image_is_not(tmp_path: Path) -> None:
    client = FakeClient()
    client.images.present.add("there:1")
    record = ImageRecord(tmp_path / "images.json")
    puller = ImagePuller(client, verify=True, record=record)  # type: ignore[arg-type]
    puller.ensure("app:1", None, Deadline(None))
    puller.ensure("there:1", None, Deadline(None))
    assert [c["image"] for c in client.api.created] == ["app:1"]
    assert set(record.images()) == {"app:1"}


def test_without_verify_no_container_is_made(tmp_path: Path) -> None:
    client = FakeClient()
    ImagePuller(client, record=ImageRecord(tmp_path / "i.json")).ensure("app:1", None, Deadline(None))  # type: ignore[arg-type]
    assert client.api.created == []


def test_prune_removes_only_expired_unused_recorded_images(tmp_path: Path) -> None:
    client = FakeClient()
    client.images.present |= {"old:1", "busy:1", "new:1", "there:1"}
    client.api.containers_in_use = [{"Image": "busy:1"}]
    record = ImageRecord(tmp_path / "images.json")
    for image in ("old:1", "busy:1", "gone:1"):
        record.mark_pulled(image, when=0.0)
    record.mark_pulled("new:1", when=10 * HOUR)
    removed = prune(client, record, 2 * HOUR, now=11 * HOUR)  # type: ignore[arg-type]
    assert removed == ["old:1"]
    assert client.images.present == {"busy:1", "new:1", "there:1"}
    assert set(record.images()) == {"busy:1", "new:1"}  # gone:1 was already gone: forgotten too


def test_pruner_checks_the_clock_and_only_then_prunes(tmp_path: Path) -> None:
    client = FakeClient()
    record = ImageRecord(tmp_path / "images.json")
    assert Pruner(client, record, 0).maybe_prune() is None  # type: ignore[arg-type]
    pruner = Pruner(client, record, HOUR)  # type: ignore[arg-type]
    first = pruner.maybe_prune()
    assert isinstance(first, threading.Thread)
    first.join(5)
    assert pruner.maybe_prune() is None  # within the interval: not even the record is read
    assert json.loads(record.path.read_text())["pruned_at"] > 0


def test_sidecar_lines_are_prefixed_whole() -> None:
    lines = LinePrefixer("web")
    assert lines.feed("one\ntw") == "[web] one\n"
    assert lines.feed("o\n\nthree") == "[web] two\n[web] \n"
    assert lines.flush() == "[web] three\n"
    assert lines.flush() == ""
