"""The Podman runtime's command lines, built without running podman."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import LABEL_SCOPE, LABEL_TASK, Mount, Registry, RunRequest, Sidecar, Step
from tork_ray.runtime.podman_spec import (
    authfile_json,
    check_request,
    container_env,
    create_argv,
    label_filters,
    mount_option,
    pull_argv,
    ulimits,
    volume_create_argv,
)
from tork_ray.runtime.stepenv import Wrap
from tork_ray.settings import RuntimeSettings

PODMAN = RuntimeSettings(type="podman")


def request(**fields: Any) -> RunRequest:
    main = fields.pop("main", Step(name="main", image="busybox", run="echo hi", env={"A": "1"}))
    return RunRequest(task_id="t1", job_id="j1", scope="s1", main=main, **fields)


def argv(req: RunRequest, settings: RuntimeSettings = PODMAN, **kwargs: Any) -> list[str]:
    return create_argv(
        req,
        req.main,
        name="tork-t1-main",
        tork_dir=Path("/tmp/w/main"),
        volumes=kwargs.pop("volumes", {}),
        settings=settings,
        limits=["--ulimit", "nofile=1024:1024"],
        wrap=kwargs.pop("wrap", None),
    )


def pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def test_create_command_for_a_run_script() -> None:
    args = argv(request())
    assert args[:4] == ["podman", "create", "--name", "tork-t1-main"]
    # The task's env is sourced from the step's env script: `ps` shows this command line, so no value is on it.
    assert args[-2:] == ["busybox", ". /tork/env && exec /tork/entrypoint"]
    assert pairs(args, "--entrypoint") == ['["sh", "-c"]']
    assert pairs(args, "--env") == ["TORK_OUTPUT=/tork/output", "TORK_PROGRESS=/tork/progress"]
    assert "--env-file" not in args
    assert pairs(args, "--volume") == ["/tmp/w/main:/tork:rw"]
    assert f"{LABEL_TASK}=t1" in pairs(args, "--label") and f"{LABEL_SCOPE}=s1" in pairs(args, "--label")
    assert pairs(args, "--ulimit") == ["nofile=1024:1024"]
    assert "--privileged" not in args and "--workdir" not in args


def test_cmd_entrypoint_workdir_limits_privileged() -> None:
    main = Step(name="m", image="alpine", cmd=("echo", "x y"), entrypoint=("/bin/sh", "-c"), files={"f": "F"})
    args = argv(request(main=main, cpus_nano=250_000_000, memory_bytes=2**20), RuntimeSettings(podman_privileged=True))
    assert args[-3:] == ["alpine", "echo", "x y"]
    assert pairs(args, "--entrypoint") == ['["/bin/sh", "-c"]']
    assert pairs(args, "--workdir") == ["/tork/workdir"]
    assert pairs(args, "--cpus") == ["0.25"]
    assert pairs(args, "--memory") == ["1048576b"] and pairs(args, "--memory-swap") == ["1048576b"]
    assert "--privileged" in args
    assert pairs(argv(request(workdir="/src")), "--workdir") == ["/src"]


def test_mounts_and_networks() -> None:
    mounts = (Mount("volume", "/data"), Mount("bind", "/in", "/srv"), Mount("tmpfs", "/t", opts={"size": "1m"}))
    args = argv(request(mounts=mounts, networks=("n1", "n2")), volumes={0: "tork-t1-0"})
    assert pairs(args, "--mount") == [
        "type=volume,source=tork-t1-0,target=/data",
        "type=bind,source=/srv,target=/in",
        "type=tmpfs,target=/t,tmpfs-size=1m",
    ]
    assert pairs(args, "--network") == ["n1", "n2"]
    assert pairs(args, "--network-alias") == ["main"]
    assert mount_option(Mount("tmpfs", "/t"), "") == "type=tmpfs,target=/t"


def test_unsupported_and_refused() -> None:
    with pytest.raises(RuntimeFailure, match="sidecars is not supported on podman runtime"):
        check_request(request(sidecars=(Sidecar(Step(name="s", image="x")),)), PODMAN)
    with pytest.raises(RuntimeFailure, match="sidecars, gpus are not supported on podman runtime"):
        check_request(request(sidecars=(Sidecar(Step(name="s", image="x")),), gpus="all"), PODMAN)
    with pytest.raises(RuntimeFailure, match="image is required on the podman runtime"):
        check_request(request(main=Step(name="m", run="x")), PODMAN)
    with pytest.raises(RuntimeFailure, match=r"runtime\.podman\.host\.network"):
        check_request(request(networks=("host",)), PODMAN)
    check_request(request(networks=("host",)), RuntimeSettings(type="podman", podman_host_network=True))


def test_volume_and_filters() -> None:
    req = request(mounts=(Mount("volume", "/d", opts={"o": "size=1m"}),))
    args = volume_create_argv(req, 0, req.mounts[0], "tork-t1-0")
    assert args[:3] == ["podman", "volume", "create"] and args[-1] == "tork-t1-0"
    assert pairs(args, "--opt") == ["o=size=1m"]
    assert label_filters({"a": "1", "b": "2"}) == ["--filter", "label=a=1", "--filter", "label=b=2"]


def test_credentials_go_in_an_authfile_not_on_the_command_line() -> None:
    auth = json.loads(authfile_json("127.0.0.1:5000", Registry("u", "p4ss")))
    assert base64.b64decode(auth["auths"]["127.0.0.1:5000"]["auth"]).decode() == "u:p4ss"
    assert pull_argv("img", "/tmp/auth.json") == ["podman", "pull", "--quiet", "--authfile", "/tmp/auth.json", "img"]
    assert pull_argv("img") == ["podman", "pull", "--quiet", "img"]


def test_ulimits_are_the_workers_own_capped_at_pid_max(tmp_path: Path) -> None:
    pid_max = tmp_path / "pid_max"
    pid_max.write_text("1000\n")
    args = ulimits(str(pid_max))
    assert args[0] == "--ulimit" and args[1].startswith("nofile=")
    nproc = int(args[3].removeprefix("nproc=").split(":")[0])
    assert nproc <= 1000


def test_env_values_never_reach_the_command_line() -> None:
    secret = "CANARY-7f3a9b"
    main = Step(name="m", image="busybox", cmd=("printenv",), env={"A": secret, "MULTI": f"{secret}\nline two"})
    args = argv(request(main=main))
    assert not any(secret in arg for arg in args)
    assert pairs(args, "--env-file") == ["/tmp/w/main.env"]  # beside the step's directory, not mounted
    assert "MULTI" in pairs(args, "--env")  # named only: podman copies the value from its own environment
    assert container_env(main) == ({"A": secret}, {"MULTI": f"{secret}\nline two"})
    with pytest.raises(RuntimeFailure, match="cannot carry a multi-line value"):
        container_env(Step(name="m", image="b", cmd=("x",), env={"AWS*": "a\nb"}))  # would copy the worker's


def test_a_wrapped_step_has_no_env_value_on_its_command_line_nor_in_an_env_file() -> None:
    secret = "CANARY-7f3a9b"
    main = Step(name="m", image="busybox", entrypoint=("/bin/echo",), cmd=("a b",), env={"A": secret, "UID": "7"})
    args = argv(request(main=main), wrap=Wrap(argv=("/bin/echo", "a b")))
    assert not any(secret in arg for arg in args)
    assert pairs(args, "--entrypoint") == [json.dumps(["/bin/sh", "-c", '. /tork/env && exec "$@"', "sh"])]
    assert args[-3:] == ["busybox", "/bin/echo", "a b"]
    assert container_env(main, wrapped=True) == ({"UID": "7"}, {})  # only what a shell keeps for itself
    unwrapped = argv(request(main=main))
    assert pairs(unwrapped, "--entrypoint") == ['["/bin/echo"]'] and unwrapped[-2:] == ["busybox", "a b"]
    assert container_env(main) == ({"A": secret, "UID": "7"}, {})  # the fallback: --env-file
