"""The Docker runtime's container, volume and network specs, built without a daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import (
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_SCOPE,
    LABEL_TASK,
    Mount,
    Probe,
    RunRequest,
    Sidecar,
    Step,
)
from tork_ray.runtime.docker_spec import (
    Networking,
    container_args,
    image_refs,
    network_args,
    networking,
    slug,
    step_command,
    volume_args,
)
from tork_ray.runtime.stepenv import Wrap

TORK_DIR = Path("/tmp/tork-t1/main")


def request(**fields: Any) -> RunRequest:
    main = fields.pop("main", Step(name="main", image="busybox", run="echo hi"))
    return RunRequest(task_id="t1", job_id="j1", scope="s1", main=main, **fields)


def args_for(req: RunRequest, step: Step | None = None, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"tork_dir": TORK_DIR, "volumes": {}, "net": Networking(), "privileged": False}
    options.update(kwargs)
    return container_args(req, step or req.main, **options)


def test_run_becomes_sh_c_of_the_entrypoint_file() -> None:
    args = args_for(request())
    assert args["entrypoint"] == ["sh", "-c"]
    assert args["command"] == ["/tork/entrypoint"]
    assert args["image"] == "busybox"
    assert args["detach"] is True


def test_cmd_and_entrypoint_are_the_tasks_own() -> None:
    step = Step(name="main", image="busybox", cmd=("echo", "hi"), entrypoint=("/bin/busybox",))
    assert step_command(step) == (["/bin/busybox"], ["echo", "hi"])
    assert step_command(Step(name="x", image="busybox", cmd=("ls",))) == (None, ["ls"])
    assert step_command(Step(name="x", image="busybox")) == (None, None)  # the image's own


def test_env_has_tork_output_and_progress_and_the_tasks_env_is_sourced_not_configured() -> None:
    args = args_for(request(main=Step(name="m", image="b", run="x", env={"A": "1"})))
    # `docker inspect` shows a container's Env: the task's values come from the env script the launcher sources.
    assert args["environment"] == {"TORK_OUTPUT": "/tork/stdout", "TORK_PROGRESS": "/tork/progress"}
    assert args["entrypoint"] == ["sh", "-c"]
    assert args["command"] == [". /tork/env && exec /tork/entrypoint"]
    assert args["volumes"] == {str(TORK_DIR): {"bind": "/tork", "mode": "rw"}}


@pytest.mark.parametrize("shell", [("bash", "-c"), ("/bin/sh", "-c"), ("/usr/bin/zsh", "-c")])
def test_a_tasks_own_shell_launcher_sources_the_env_too(shell: tuple[str, ...]) -> None:
    args = args_for(request(main=Step(name="m", image="b", run="x", env={"A": "1"}, entrypoint=shell)))
    assert args["environment"] == {"TORK_OUTPUT": "/tork/stdout", "TORK_PROGRESS": "/tork/progress"}
    assert args["entrypoint"] == list(shell)
    assert args["command"] == [". /tork/env && exec /tork/entrypoint"]


@pytest.mark.parametrize(
    "step",
    [
        Step(name="m", image="b", run="x", env={"A": "1"}, entrypoint=("python3", "-c")),
        Step(name="m", image="b", run="x", env={"A": "1"}, entrypoint=("bash", "-e", "-c")),
        Step(name="m", image="b", env={"A": "1"}, cmd=("echo", "hi")),
    ],
    ids=["not-a-shell", "other-flags", "own-cmd"],
)
def test_a_step_that_cannot_source_a_file_keeps_its_env_in_the_container(step: Step) -> None:
    args = args_for(request(main=step))
    assert args["environment"]["A"] == "1"
    assert args["command"] != [". /tork/env && exec /tork/entrypoint"]


def test_workdir_files_and_default_workdir() -> None:
    assert args_for(request())["working_dir"] is None  # the image's own
    with_files = request(main=Step(name="m", image="b", run="x", files={"a.txt": "A"}))
    assert args_for(with_files)["working_dir"] == "/tork/workdir"
    assert args_for(request(workdir="/src"))["working_dir"] == "/src"


def test_labels_name_task_job_and_scope() -> None:
    labels = {LABEL_MANAGED: "true", LABEL_SCOPE: "s1", LABEL_TASK: "t1", LABEL_JOB: "j1"}
    assert args_for(request())["labels"] == labels


def test_limits_without_swap() -> None:
    args = args_for(request(cpus_nano=500_000_000, memory_bytes=20 * 2**20))
    assert args["nano_cpus"] == 500_000_000
    assert args["mem_limit"] == args["memswap_limit"] == 20 * 2**20
    assert "nano_cpus" not in args_for(request())
    assert "mem_limit" not in args_for(request())


def test_privileged_only_when_set() -> None:
    assert args_for(request())["privileged"] is False
    assert args_for(request(), privileged=True)["privileged"] is True


def test_mounts() -> None:
    req = request(
        mounts=(
            Mount(type="volume", target="/data"),
            Mount(type="bind", target="/host", source="/srv/in"),
            Mount(type="tmpfs", target="/scratch", opts={"size": "1048576", "mode": "1777"}),
        )
    )
    mounts = args_for(req, volumes={0: "tork-t1-0"})["mounts"]
    assert mounts[0] == {"Target": "/data", "Source": "tork-t1-0", "Type": "volume", "ReadOnly": False}
    assert mounts[1] == {"Target": "/host", "Source": "/srv/in", "Type": "bind", "ReadOnly": False}
    assert mounts[2]["Type"] == "tmpfs" and mounts[2]["Target"] == "/scratch"
    assert mounts[2]["TmpfsOptions"] == {"SizeBytes": 1048576, "Mode": 0o1777}


def test_volume_and_network_specs() -> None:
    req = request(mounts=(Mount(type="volume", target="/data", opts={"type": "tmpfs", "device": "tmpfs"}),))
    volume = volume_args(req, 0, req.mounts[0])
    assert volume["name"] == "tork-t1-0"
    assert volume["driver_opts"] == {"type": "tmpfs", "device": "tmpfs"}
    assert volume["labels"][LABEL_TASK] == "t1"
    network = network_args(req)
    assert network["name"] == "tork-t1"
    assert network["driver"] == "bridge"
    assert network["labels"][LABEL_SCOPE] == "s1"


def test_networking_primary_and_others() -> None:
    assert networking(request(), None) == Networking()
    assert networking(request(networks=("a", "b")), None) == Networking("a", ("b",))
    assert networking(request(networks=("a",)), "tork-t1") == Networking("tork-t1", ("a",))
    assert networking(request(networks=("host",)), None) == Networking("host", ())
    with pytest.raises(RuntimeFailure, match="network host cannot be combined"):
        networking(request(networks=("host", "a")), None)


def test_aliases_are_the_slug_of_the_name_on_user_networks() -> None:
    step = Step(name="My Web Server", image="b", run="x")
    args = args_for(request(), step, net=Networking("tork-t1", ("a",)))
    assert args["network"] == "tork-t1"
    assert args["networking_config"]["tork-t1"]["Aliases"] == ["my-web-server"]
    builtin = args_for(request(), step, net=Networking("host"))
    assert builtin["network_mode"] == "host" and "network" not in builtin


def test_slug() -> None:
    assert slug("My Web Server") == "my-web-server"
    assert slug("  db_1 (primary) ") == "db-1-primary"
    assert slug("***") == "task"


def test_gpus_become_a_device_request() -> None:
    args = args_for(request(gpus="count=2"))
    assert args["device_requests"] == [
        {"Driver": "", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert "device_requests" not in args_for(request())


def test_a_probed_sidecar_publishes_its_port_on_loopback_only() -> None:
    sidecar = Sidecar(Step(name="web", image="b", run="httpd"), Probe(port=8080))
    args = args_for(request(), sidecar.step, sidecar=sidecar)
    assert args["ports"] == {"8080/tcp": ("127.0.0.1", None)}
    assert "ports" not in args_for(request())


def test_image_refs_each_image_once_and_required() -> None:
    req = request(
        pre=(Step(name="p", image="alpine", run="x"),),
        post=(Step(name="q", image="busybox", run="x"),),
        sidecars=(Sidecar(Step(name="s", image="nginx")),),
    )
    assert [step.image for step in image_refs(req)] == ["alpine", "busybox", "nginx"]
    with pytest.raises(RuntimeFailure, match="p: image is required"):
        image_refs(request(pre=(Step(name="p", run="x"),)))


def test_env_a_launcher_cannot_source_stays_in_the_containers_env() -> None:
    own_cmd = Step(name="m", image="b", cmd=("printenv",), env={"A": "1"})  # no shell to wrap it with
    assert args_for(request(main=own_cmd))["environment"]["A"] == "1"
    odd = Step(name="m", image="b", run="x", env={"NOT-A-SHELL-NAME": "v", "B": "2"})
    args = args_for(request(main=odd))
    assert args["environment"]["NOT-A-SHELL-NAME"] == "v" and "B" not in args["environment"]


def test_a_wrapped_step_runs_its_original_argv_under_a_shell_that_sources_its_env() -> None:
    step = Step(name="m", image="b", entrypoint=("/bin/echo",), cmd=("a b", "$x"), env={"TOKEN": "s", "X-Y": "v"})
    wrap = Wrap(argv=("/bin/echo", "a b", "$x"))
    args = args_for(request(main=step), wrap=wrap)
    assert args["entrypoint"] == ["/bin/sh", "-c", '. /tork/env && exec "$@"', "sh"]
    assert args["command"] == ["/bin/echo", "a b", "$x"]
    # The sourced value is not configured; a name no shell can export is (the wrapper is then refused by
    # shellwrap.plan_wrap, so this only shows what each part carries).
    assert args["environment"] == {"X-Y": "v", "TORK_OUTPUT": "/tork/stdout", "TORK_PROGRESS": "/tork/progress"}
    assert step_command(step) == (["/bin/echo"], ["a b", "$x"])  # unwrapped: as before


def test_names_a_shell_keeps_for_itself_stay_in_the_containers_env() -> None:
    step = Step(name="m", image="b", run="x", env={"UID": "7", "SHLVL": "2", "TOKEN": "s"})
    assert args_for(request(main=step))["environment"] == {
        "UID": "7",
        "SHLVL": "2",
        "TORK_OUTPUT": "/tork/stdout",
        "TORK_PROGRESS": "/tork/progress",
    }
