"""Wrapping a shell-less step (runtime/shellwrap.py): Docker's merge of entrypoint and cmd, the wrapper that
sources the env and execs the original argv verbatim, and how /bin/sh is found through symlinks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tork_ray.runtime.base import Mount, Step
from tork_ray.runtime.shellwrap import (
    ImageConfig,
    ShellCache,
    env_prologue,
    has_shell,
    original_argv,
    plan_wrap,
    shadows_shell,
)
from tork_ray.runtime.stepenv import declared_command, wrapper, write_env_script

IMAGE = ImageConfig(entrypoint=("/entry.sh", "--flag"), cmd=("serve", "--port", "80"), env={"PATH": "/bin"})
NO_ENTRYPOINT = ImageConfig(cmd=("/bin/sh",))


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "image", "expected"),
    [
        # The step's entrypoint replaces the image's, and the image's Cmd is not inherited.
        (["/bin/echo"], None, IMAGE, ["/bin/echo"]),
        (["/bin/echo"], ["a b"], IMAGE, ["/bin/echo", "a b"]),
        # No entrypoint of its own: the image's, followed by the step's cmd, else the image's Cmd.
        (None, ["x", "y"], IMAGE, ["/entry.sh", "--flag", "x", "y"]),
        (None, None, IMAGE, ["/entry.sh", "--flag", "serve", "--port", "80"]),
        (None, ["env"], NO_ENTRYPOINT, ["env"]),
        (None, None, NO_ENTRYPOINT, ["/bin/sh"]),
        (None, None, ImageConfig(), []),
    ],
)
def test_original_argv_follows_dockers_merge(
    entrypoint: list[str] | None, cmd: list[str] | None, image: ImageConfig, expected: list[str]
) -> None:
    assert original_argv(entrypoint, cmd, image) == expected


def test_image_config_parses_inspect_output() -> None:
    parsed = ImageConfig.parse({"Entrypoint": None, "Cmd": ["/bin/sh"], "Env": ["PATH=/bin", "EMPTY=", "EQ=a=b"]})
    assert parsed == ImageConfig(entrypoint=None, cmd=("/bin/sh",), env={"PATH": "/bin", "EMPTY": "", "EQ": "a=b"})
    assert ImageConfig.parse(None) == ImageConfig()  # `docker import` without -c: no Config at all
    assert ImageConfig.parse({}, "sha256:abc").id == "sha256:abc"


def test_what_is_wrapped() -> None:
    def plan(step: Step, image: ImageConfig = IMAGE, env: dict[str, str] | None = None) -> Any:
        return plan_wrap(step, "/tork", image, env or {"TORK_OUTPUT": "/tork/stdout"}, "docker")

    own_cmd = plan(Step(name="m", image="b", cmd=("printenv",), env={"TOKEN": "s"}))
    assert own_cmd.wrap is not None and own_cmd.wrap.argv == ("/entry.sh", "--flag", "printenv")
    echo = plan(Step(name="m", image="b", entrypoint=("/bin/echo",), cmd=("$x",), env={"TOKEN": "s"}))
    assert echo.wrap.argv == ("/bin/echo", "$x")
    image_own = plan(Step(name="m", image="b", env={"TOKEN": "s"}))  # a sidecar running the image's own
    assert image_own.wrap.argv == ("/entry.sh", "--flag", "serve", "--port", "80")
    # `run` with a non-shell launcher: what it would have run, /tork/entrypoint as its argument.
    python = plan(Step(name="m", image="b", run="x", entrypoint=("python3", "-c"), env={"TOKEN": "s"}))
    assert python.wrap.argv == ("python3", "-c", "/tork/entrypoint")
    # Nothing to wrap: Tork's own launcher sources the file already; no env; nothing to run at all.
    assert plan(Step(name="m", image="b", run="x", env={"TOKEN": "s"})).wrap is None
    assert plan(Step(name="m", image="b", cmd=("ls",))).wrap is None
    assert plan(Step(name="m", image="b", env={"TOKEN": "s"}), image=ImageConfig()).wrap is None


def test_a_variable_the_wrapper_would_lose_keeps_the_old_way_and_says_so() -> None:
    step = Step(name="m", image="b", cmd=("printenv",), env={"TOKEN": "s", "X-Y": "z"})
    plan = plan_wrap(step, "/tork", IMAGE, {"X-Y": "z"}, "podman")
    assert plan.wrap is None
    assert plan.note == (
        "tork: the env of step 'm' is in its container's configuration (`podman inspect` shows it): "
        "/bin/sh would not pass on its variable(s) X-Y\n"
    )
    odd_image = ImageConfig(cmd=("x",), env={"OPTIND": "a"})  # dash refuses to start with it
    assert plan_wrap(step, "/tork", odd_image, {}, "docker").wrap is None
    assert plan_wrap(step, "/tork", odd_image, {"OPTIND": "3"}, "docker").wrap is not None  # a number is fine


def stat_of(tree: dict[str, dict[str, Any]]) -> Any:
    return lambda path: tree.get(path)


SYMLINK = (1 << 27) | 0o777


def test_has_shell_follows_symlinks_to_an_executable_file() -> None:
    busybox = {"/bin/sh": {"mode": SYMLINK, "linkTarget": "/bin/busybox"}, "/bin/busybox": {"mode": 0o755}}
    assert has_shell(stat_of(busybox))
    relative = {"/bin/sh": {"mode": SYMLINK, "linkTarget": "dash"}, "/bin/dash": {"mode": 0o755}}
    assert has_shell(stat_of(relative))
    up = {"/bin/sh": {"mode": SYMLINK, "linkTarget": "../usr/bin/bash"}, "/usr/bin/bash": {"mode": 0o755}}
    assert has_shell(stat_of(up))
    assert not has_shell(stat_of({}))  # no /bin/sh
    assert not has_shell(stat_of({"/bin/sh": {"mode": SYMLINK, "linkTarget": "/gone"}}))  # dangling
    assert not has_shell(stat_of({"/bin/sh": {"mode": 0o644}}))  # not executable
    assert not has_shell(stat_of({"/bin/sh": {"mode": (1 << 31) | 0o755}}))  # a directory
    loop = {"/bin/sh": {"mode": SYMLINK, "linkTarget": "/bin/sh"}}
    assert not has_shell(stat_of(loop))


# What the wrapped program received: its arguments, then its environment (one repr a line).
PROBE = "import os, sys; print(repr(sys.argv[1:])); print(repr(dict(os.environ)))"
ODD_ARGS = ["a b", "it's", '"q"', "$HOME", "`id`", "*", "", "-n", "x\ny", "\\"]


def run_wrapped(tmp_path: Path, step: Step, configured: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Runs the wrapper as a container would: with the host's /bin/sh, the env script at tmp_path/env, and
    `configured` as the process's environment."""
    plan = plan_wrap(step, str(tmp_path), ImageConfig(), configured, "docker")
    assert plan.wrap is not None
    assert write_env_script(tmp_path, step, plan.wrap)
    argv = [*wrapper(str(tmp_path)), *plan.wrap.argv]
    assert argv[0] == "/bin/sh"
    done = subprocess.run(argv, capture_output=True, check=True, env=configured, cwd=tmp_path, text=True)
    args, env = done.stdout.splitlines()
    return ast.literal_eval(args), ast.literal_eval(env)


# LC_ALL set: Python adds LC_CTYPE to its own environment under the C locale.
CONFIGURED = {"TORK_OUTPUT": "/tork/stdout", "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


def test_the_wrapper_keeps_every_argument_verbatim_and_adds_only_the_env(tmp_path: Path) -> None:
    step = Step(name="m", image="b", entrypoint=(sys.executable, "-c"), cmd=(PROBE, *ODD_ARGS), env={"T": "it's $x"})
    args, env = run_wrapped(tmp_path, step, CONFIGURED)
    assert args == ODD_ARGS
    # Exactly the configured env plus the sourced one: no PWD or SHLVL of the wrapper's shell.
    assert env == {**CONFIGURED, "T": "it's $x"}


def test_the_wrapper_gives_back_what_the_shell_changed(tmp_path: Path) -> None:
    step = Step(name="m", image="b", entrypoint=(sys.executable, "-c"), cmd=(PROBE,), env={"TOKEN": "t"})
    configured = {**CONFIGURED, "PWD": "/somewhere", "SHLVL": "5", "IFS": "x", "PPID": "1"}
    _, env = run_wrapped(tmp_path, step, configured)
    assert env == {**configured, "TOKEN": "t"}


def test_env_prologue() -> None:
    assert env_prologue({}) == "unset PWD\nunset SHLVL\n"
    assert env_prologue({"PWD": "/a'b", "SHLVL": "2"}) == (
        "export PWD='/a'\\''b'\n[ -n \"${BASH_VERSION-}\" ] || export SHLVL='2'\n"
    )


def test_declared_command() -> None:
    assert declared_command(Step(name="m", run="x"), "/tork") == (["sh", "-c"], ["/tork/entrypoint"])
    assert declared_command(Step(name="m", cmd=("ls",)), "/tork") == (None, ["ls"])
    assert declared_command(Step(name="m"), "/tork") == (None, None)


def test_the_shell_cache_remembers_per_image_id_unless_a_mount_may_cover_bin_sh() -> None:
    cache = ShellCache()
    image = ImageConfig(id="sha256:abc")
    assert cache.get(image, ()) is None
    cache.put(image, (), False)
    assert cache.get(image, ()) is False
    assert cache.get(ImageConfig(id="sha256:other"), ()) is None
    assert cache.get(ImageConfig(), ()) is None  # no id: never cached
    data = (Mount(type="volume", target="/data"), Mount(type="tmpfs", target="/usr/local/bin"))
    assert cache.get(image, data) is False
    for target in ("/", "/bin", "/usr", "/usr/bin/", "/bin/sh", "usr/bin/x", "/usr/bin/../bin"):
        covering = (Mount(type="bind", target=target, source="/x"),)
        assert shadows_shell(covering), target
        assert cache.get(image, covering) is None
        cache.put(image, covering, True)  # not remembered either
    assert cache.get(image, ()) is False
    assert not shadows_shell((Mount(type="volume", target="/binaries"), Mount(type="volume", target="/usr/lib")))
