"""The shell runtime's pure parts: what it refuses, the environment and command it gives a script."""

from __future__ import annotations

from pathlib import Path

import pytest

from tork_ray.runtime.base import Mount, Registry, RunRequest, Sidecar, Step
from tork_ray.runtime.shell import step_argv, step_env, unsupported_error, unsupported_fields
from tork_ray.settings import RuntimeSettings


def request(**fields: object) -> RunRequest:
    main = fields.pop("main", Step(name="main", run="echo hi"))
    return RunRequest(task_id="t1", job_id="j1", main=main, **fields)  # type: ignore[arg-type]


def test_a_plain_script_is_supported() -> None:
    assert unsupported_fields(request()) == []


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"main": Step(name="m", image="busybox", run="x")}, ["image"]),
        ({"main": Step(name="m", run="x", cmd=("a",), entrypoint=("b",))}, ["cmd", "entrypoint"]),
        ({"main": Step(name="m", run="x", registry=Registry("u", "p"))}, ["registry"]),
        ({"mounts": (Mount("volume", "/d"),)}, ["mounts"]),
        ({"networks": ("n",)}, ["networks"]),
        ({"memory_bytes": 10}, ["limits"]),
        ({"cpus_nano": 10}, ["limits"]),
        ({"sidecars": (Sidecar(Step(name="s")),)}, ["sidecars"]),
        ({"gpus": "all"}, ["gpus"]),
        ({"pre": (Step(name="p", image="alpine", run="x"),)}, ["pre[0].image"]),
        ({"post": (Step(name="p", run="x"), Step(name="q", cmd=("c",)))}, ["post[1].cmd"]),
    ],
)
def test_unsupported_fields_are_named(fields: dict[str, object], names: list[str]) -> None:
    assert unsupported_fields(request(**fields)) == names


def test_error_texts() -> None:
    assert unsupported_error(["image"]) == "image is not supported on shell runtime"
    assert unsupported_error(["mounts", "image"]) == "mounts, image are not supported on shell runtime"


def test_env_is_only_the_tasks_own_plus_tork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_SECRET", "x")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("HOME", "/home/w")
    env = step_env(Step(name="m", run="x", env={"A": "1"}), Path("/tmp/w"))
    assert env == {
        "A": "1",
        "TORK_OUTPUT": "/tmp/w/stdout",
        "TORK_PROGRESS": "/tmp/w/progress",
        "WORKDIR": "/tmp/w",
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/w",
    }


def test_command_is_the_setting_then_the_script() -> None:
    assert step_argv(RuntimeSettings(), Path("/tmp/w")) == ["bash", "-c", "/tmp/w/entrypoint"]
    assert step_argv(RuntimeSettings(shell_cmd=("sh", "-c")), Path("/w")) == ["sh", "-c", "/w/entrypoint"]
