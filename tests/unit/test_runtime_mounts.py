"""Mount policy: bind off by default, the allow-list, and no engine socket unless explicitly allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import Mount
from tork_ray.runtime.mounts import check_mounts, ensure_bind_sources, exposed_socket, is_listed
from tork_ray.settings import RuntimeSettings

BINDS_ON = RuntimeSettings(bind_allowed=True)


def refused(mounts: tuple[Mount, ...], settings: RuntimeSettings) -> str:
    with pytest.raises(RuntimeFailure) as caught:
        check_mounts(mounts, settings)
    return caught.value.message


def test_volume_and_tmpfs_need_no_setting() -> None:
    check_mounts((Mount("volume", "/data"), Mount("tmpfs", "/scratch")), RuntimeSettings())


def test_bind_is_off_by_default() -> None:
    message = refused((Mount("bind", "/in", "/srv/in"),), RuntimeSettings())
    assert message == "mounts[0]: bind mounts are not allowed on this node (setting mounts.bind.allowed)"


def test_bind_allowed() -> None:
    check_mounts((Mount("bind", "/in", "/srv/in"),), BINDS_ON)


def test_allow_list_is_a_case_insensitive_exact_match() -> None:
    settings = RuntimeSettings(bind_allowed=True, bind_sources=("/srv/In", "/data"))
    check_mounts((Mount("bind", "/in", "/SRV/in"),), settings)
    message = refused((Mount("bind", "/in", "/srv/in/sub"),), settings)
    assert "bind source /srv/in/sub is not in the allowed sources (mounts.bind.sources)" in message
    assert is_listed("/DATA", ("/data",)) and not is_listed("/data2", ("/data",))


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/"])
def test_engine_socket_refused_even_with_binds_allowed(source: str) -> None:
    message = refused((Mount("bind", "/sock", source),), BINDS_ON)
    assert "would expose the container engine socket" in message
    assert "mounts.bind.docker.socket" in message
    check_mounts((Mount("bind", "/sock", source),), RuntimeSettings(bind_allowed=True, bind_docker_socket=True))


def test_exposed_socket_follows_symlinks(tmp_path: Path) -> None:
    sockets = (str(tmp_path / "engine" / "docker.sock"),)
    (tmp_path / "engine").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "engine")
    assert exposed_socket(str(tmp_path / "link"), sockets) == sockets[0]
    assert exposed_socket(str(tmp_path / "other"), sockets) == ""
    assert exposed_socket("/srv/data") == ""


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        (Mount("nfs", "/x"), "unknown mount type 'nfs'"),
        (Mount("volume", "relative"), "target must be an absolute path"),
        (Mount("tmpfs", "/x", "/src"), "a tmpfs mount has no source"),
    ],
)
def test_malformed_mounts(mount: Mount, message: str) -> None:
    assert message in refused((mount,), BINDS_ON)


def test_bind_needs_an_absolute_source() -> None:
    assert "needs an absolute source path" in refused((Mount("bind", "/in", "rel"),), BINDS_ON)


def test_missing_bind_source_directory_is_created(tmp_path: Path) -> None:
    source = tmp_path / "a" / "b"
    existing = tmp_path / "file.txt"
    existing.write_text("keep")
    ensure_bind_sources((Mount("bind", "/in", str(source)), Mount("bind", "/f", str(existing))))
    assert source.is_dir()
    assert existing.read_text() == "keep"
