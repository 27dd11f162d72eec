"""How a step's env reaches its container without showing: not in `docker inspect` / `podman inspect`, and
never on a command line (`ps` shows every container process's on the host)."""

# A container's configured Env is shown by inspect to anyone who can reach the engine, and `podman create
# --env K=V` puts the value in the process list. So a `run` step launched Tork's way (`sh -c`, no entrypoint or
# cmd of its own) gets its env from a file in its own directory, mounted at /tork: the shell sources it and
# then execs the script, which sees the same variables as before (TORK_OUTPUT and the like stay in the
# container's Env: they are paths, not secrets). `.` and `export` are shell built-ins, so no value is ever
# an argument of a process. The file goes with the task's directory when the task ends.
#
# So is a `run` step whose own entrypoint is a shell's `-c` launcher (`entrypoint: [bash, -c]`): the string
# that shell runs can source the file just the same. Any other step with its own entrypoint or cmd cannot be
# wrapped (its image may have no shell), nor can a variable whose name a shell cannot export: those keep
# Docker's Env (the Docker API, never a command line), and on Podman go through --env-file or podman's own
# environment (see podman_spec.py).

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from tork_ray.runtime.base import Step

ENV_SCRIPT = "env"
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Shells whose `-c STRING` runs STRING with `.` and `exec`, as `sh -c` does.
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "ksh", "mksh", "zsh"})


def launched_by_shell(step: Step) -> bool:
    """True when the step runs its script through a shell's `-c`: Tork's default `sh -c`, or its own."""
    if not step.run or step.cmd:
        return False
    if not step.entrypoint:
        return True
    program, *flags = step.entrypoint
    return PurePosixPath(program).name in _SHELLS and flags == ["-c"]


def script_env(step: Step) -> dict[str, str]:
    """The part of the step's env that its launcher sources from the env script."""
    if not launched_by_shell(step):
        return {}
    return {name: value for name, value in step.env.items() if _SHELL_NAME.match(name) and "\x00" not in value}


def other_env(step: Step) -> dict[str, str]:
    """The part of the step's env that must be given to the container itself."""
    sourced = script_env(step)
    return {name: value for name, value in step.env.items() if name not in sourced}


def launcher(tork_dir: str) -> str:
    """The `sh -c` command that loads the env script, then runs the step's script in its place."""
    return f". {tork_dir}/{ENV_SCRIPT} && exec {tork_dir}/entrypoint"


def env_script(env: dict[str, str]) -> str:
    """`export NAME='value'` lines; single quotes keep every character literal (a ' is closed, escaped and
    reopened), newlines included."""
    return "".join(f"export {name}={_quote(value)}\n" for name, value in env.items())


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def write_env_script(directory: Path, step: Step) -> bool:
    """Writes the env script into the step's directory when it has one to source; True if it did.

    0444: the container may run as any user and must read it; on the host the task's directory sits in a
    0700 directory of the worker's own, so no other host user reaches it.
    """
    env = script_env(step)
    if not env:
        return False
    path = directory / ENV_SCRIPT
    path.write_text(env_script(env))
    os.chmod(path, 0o444)
    return True
