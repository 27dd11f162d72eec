"""How a step's env reaches its container without showing: not in `docker inspect` / `podman inspect`, and
never on a command line (`ps` shows every container process's on the host)."""

# A container's configured Env is shown by inspect to anyone who can reach the engine, and `podman create
# --env K=V` puts the value in the process list. So a step's env goes to a file in its own directory, mounted
# at /tork, which a shell sources before it execs what the step runs; that program sees the same variables as
# before (TORK_OUTPUT and the like stay in the container's Env: they are paths, not secrets). `.` and `export`
# are shell built-ins, so no value is ever an argument of a process. The file goes with the task's directory.
#
# - A `run` step launched by a shell's `-c` (Tork's `sh -c`, or its own `entrypoint: [bash, -c]`): the string
#   that shell runs sources the file, then execs the script.
# - Any other step (its own `cmd`, an entrypoint that is not a shell's `-c`, the image's own command) is
#   wrapped (`Wrap`): the container runs `/bin/sh -c '. /tork/env && exec "$@"' sh <what it would have run>`,
#   where what it would have run follows Docker's rules (shellwrap.py). The runtime wraps only when the image
#   has a /bin/sh; without one the env stays in the container's configuration and the task's log says so.
# - A variable whose name a shell cannot export, or that a shell keeps for itself (readonly in bash: UID,
#   PPID, ...), keeps Docker's Env (the Docker API, never a command line), and on Podman goes through
#   --env-file or podman's own environment (see podman_spec.py).

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tork_ray.runtime.base import Step

ENV_SCRIPT = "env"
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Shells whose `-c STRING` runs STRING with `.` and `exec`, as `sh -c` does.
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "ksh", "mksh", "zsh"})
# Names a shell keeps for itself: bash refuses to export its readonly ones (and a failed `.` ends the
# launcher), dash refuses OPTIND values, bash rewrites SHLVL on exec and `_` after every command. None of
# them is a secret's name: they stay in the container's own Env, which the program receives unchanged.
_SHELL_SPECIAL = frozenset({"_", "UID", "EUID", "PPID", "SHELLOPTS", "BASHOPTS", "BASH_VERSINFO", "OPTIND", "SHLVL"})


@dataclass(frozen=True)
class Wrap:
    """A step that runs no shell of its own, run through `/bin/sh -c '. /tork/env && exec "$@"'`.

    `argv` is what its container would have run without the wrapper (shellwrap.original_argv); `prologue`
    is shell code the env script runs first, undoing what /bin/sh changed in the environment at its start.
    """

    argv: tuple[str, ...]
    prologue: str = ""


def launched_by_shell(step: Step) -> bool:
    """True when the step runs its script through a shell's `-c`: Tork's default `sh -c`, or its own."""
    if not step.run or step.cmd:
        return False
    if not step.entrypoint:
        return True
    program, *flags = step.entrypoint
    return PurePosixPath(program).name in _SHELLS and flags == ["-c"]


def sourceable_env(step: Step) -> dict[str, str]:
    """The part of the step's env that a shell can source from the env script."""
    return {
        name: value
        for name, value in step.env.items()
        if SHELL_NAME.match(name) and name not in _SHELL_SPECIAL and "\x00" not in value
    }


def wants_wrapper(step: Step) -> bool:
    """True when the step has env to hide but no shell of its own to source it: the runtime may wrap it."""
    return not launched_by_shell(step) and bool(sourceable_env(step))


def script_env(step: Step, wrapped: bool = False) -> dict[str, str]:
    """The part of the step's env that its launcher (or wrapper, when `wrapped`) sources from the env script."""
    if not launched_by_shell(step) and not wrapped:
        return {}
    return sourceable_env(step)


def other_env(step: Step, wrapped: bool = False) -> dict[str, str]:
    """The part of the step's env that must be given to the container itself."""
    sourced = script_env(step, wrapped)
    return {name: value for name, value in step.env.items() if name not in sourced}


def declared_command(step: Step, tork_dir: str) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, cmd) as the task gives them: Tork runs `run` as `sh -c <tork_dir>/entrypoint` unless the
    task says otherwise; None leaves the image's own."""
    entrypoint = list(step.entrypoint) or (["sh", "-c"] if step.run else None)
    command = list(step.cmd) or ([f"{tork_dir}/entrypoint"] if step.run else None)
    return entrypoint, command


def launcher(tork_dir: str) -> str:
    """The `sh -c` command that loads the env script, then runs the step's script in its place."""
    return f". {tork_dir}/{ENV_SCRIPT} && exec {tork_dir}/entrypoint"


def wrapper(tork_dir: str) -> list[str]:
    """The entrypoint of a wrapped step; the container's cmd is its original argv, which `exec "$@"` runs
    verbatim (no word is split, globbed or expanded: each stays one argument)."""
    return ["/bin/sh", "-c", f'. {tork_dir}/{ENV_SCRIPT} && exec "$@"', "sh"]


def env_script(env: dict[str, str]) -> str:
    """`export NAME='value'` lines; single quotes keep every character literal (a ' is closed, escaped and
    reopened), newlines included."""
    return "".join(f"export {name}={quote(value)}\n" for name, value in env.items())


def quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def write_env_script(directory: Path, step: Step, wrap: Wrap | None = None) -> bool:
    """Writes the env script into the step's directory when it has one to source; True if it did. One left
    by an earlier attempt at this step (a wrap given up) is removed first.

    0444: the container may run as any user and must read it; on the host the task's directory sits in a
    0700 directory of the worker's own, so no other host user reaches it.
    """
    path = directory / ENV_SCRIPT
    path.unlink(missing_ok=True)
    env = script_env(step, wrapped=wrap is not None)
    if not env:
        return False
    path.write_text((wrap.prologue if wrap else "") + env_script(env))
    os.chmod(path, 0o444)
    return True
