"""Wrapping a step that runs no shell of its own, so its env is sourced from a file like a `run` script's
(stepenv.py): what its container would have run, and whether the image has the /bin/sh the wrapper needs."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tork_ray.runtime.base import Mount, Step
from tork_ray.runtime.stepenv import SHELL_NAME, Wrap, declared_command, quote, wants_wrapper

SHELL = "/bin/sh"
SHELL_DIRS = ("/bin", "/usr/bin")  # where /bin/sh is, or links to
MAX_LINKS = 8  # symlinks followed from /bin/sh (usually one: sh -> dash, busybox or bash)

# Go's os.FileMode bits, as the Docker API reports a path's mode.
MODE_SYMLINK = 1 << 27
MODE_TYPE = (1 << 31) | MODE_SYMLINK | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


@dataclass(frozen=True)
class ImageConfig:
    """What an image runs and the env it sets, from `docker image inspect` / `podman image inspect`."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    id: str = ""  # the image's content-addressed id: what ShellCache remembers

    @classmethod
    def parse(cls, config: Mapping[str, Any] | None, image_id: str = "") -> ImageConfig:
        config = config or {}
        entrypoint, cmd = config.get("Entrypoint"), config.get("Cmd")
        env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
        return cls(
            entrypoint=tuple(entrypoint) if entrypoint is not None else None,
            cmd=tuple(cmd) if cmd is not None else None,
            env=env,
            id=image_id,
        )


class ShellCache:
    """Whether an image has /bin/sh, per image id, for one worker process: an id names the image's content,
    so the answer never changes, and the check (a stat per symlink on Docker, a `podman init` on Podman) is
    made once per image instead of once per task. A task whose mounts could cover /bin/sh is checked anew."""

    LIMIT = 1024  # ids remembered; past that the cache starts again (a worker seldom sees so many images)

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}

    def get(self, image: ImageConfig, mounts: Sequence[Mount]) -> bool | None:
        if not image.id or shadows_shell(mounts):
            return None
        return self._known.get(image.id)

    def put(self, image: ImageConfig, mounts: Sequence[Mount], found: bool) -> None:
        if image.id and not shadows_shell(mounts):
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[image.id] = found


def shadows_shell(mounts: Sequence[Mount]) -> bool:
    """True when a mount may put something else at /bin/sh or where it usually links: /, /bin, /usr, /usr/bin
    or below the last two."""
    for mount in mounts:
        target = posixpath.normpath("/" + mount.target.lstrip("/"))
        if target in ("/", "/usr") or any(target == top or target.startswith(f"{top}/") for top in SHELL_DIRS):
            return True
    return False


def original_argv(entrypoint: list[str] | None, cmd: list[str] | None, image: ImageConfig) -> list[str]:
    """What a container created with this entrypoint and cmd runs, by Docker's merge (Podman's is the same):
    an entrypoint of its own replaces the image's and drops the image's Cmd; without one, the image's
    Entrypoint is followed by the given cmd, else by the image's Cmd."""
    if entrypoint:
        return [*entrypoint, *(cmd or [])]
    return [*(image.entrypoint or ()), *(cmd or image.cmd or ())]


def env_prologue(configured: Mapping[str, str]) -> str:
    """Shell code that gives back, as the container was configured, what /bin/sh changed at its start: sh sets
    PWD (busybox's sh SHLVL too), and dash and busybox reset IFS and PPID. The program it execs must see the
    environment it would have had. bash as /bin/sh counts SHLVL up at its start and down at `exec`, and
    refuses PPID (readonly): both are left to it."""
    lines = []
    for name in ("PWD", "SHLVL"):
        if name not in configured:
            lines.append(f"unset {name}\n")
    for name in ("PWD", "SHLVL", "IFS", "PPID"):
        if name in configured:
            guard = '[ -n "${BASH_VERSION-}" ] || ' if name in ("SHLVL", "PPID") else ""
            lines.append(f"{guard}export {name}={quote(configured[name])}\n")
    return "".join(lines)


def unwrappable(configured: Mapping[str, str]) -> list[str]:
    """Configured names a wrapper shell would not pass on: dash and busybox drop a variable whose name is not a
    shell's, and dash stops at a non-numeric OPTIND before it runs anything."""
    return sorted(
        name
        for name, value in configured.items()
        if not SHELL_NAME.match(name) or (name == "OPTIND" and not (value.isascii() and value.isdigit()))
    )


@dataclass(frozen=True)
class Plan:
    """How a step's env reaches its container: `wrap` when a wrapper shell sources it; `note` is a line for
    the task's log when env that wanted hiding stays in the container's configuration."""

    wrap: Wrap | None = None
    note: str = ""


def plan_wrap(step: Step, tork_dir: str, image: ImageConfig, container_env: Mapping[str, str], engine: str) -> Plan:
    """The wrap of a step with env to hide and no shell of its own. No wrap when it needs none, when it would
    run nothing (the engine then refuses the container as it always did), or when the wrapper would lose a
    variable: a task must do what it did before, so that env stays visible and the note says why."""
    if not wants_wrapper(step):
        return Plan()
    argv = original_argv(*declared_command(step, tork_dir), image)
    if not argv:
        return Plan()
    configured = {**image.env, **container_env}
    lost = unwrappable(configured)
    if lost:
        reason = f"/bin/sh would not pass on its variable(s) {', '.join(lost)}"
        return Plan(note=visible_note(step, reason, engine))
    return Plan(wrap=Wrap(argv=tuple(argv), prologue=env_prologue(configured)))


def has_shell(stat: Callable[[str], Mapping[str, Any] | None]) -> bool:
    """True when /bin/sh is (or links to) an executable file. `stat(path)` answers the Docker API's stat of a
    path in the container (name, mode, linkTarget), not following a last symlink; None when it is absent."""
    path = SHELL
    for _ in range(MAX_LINKS):
        info = stat(path)
        if info is None:
            return False
        mode = int(info.get("mode", 0))
        if not mode & MODE_SYMLINK:
            return not mode & MODE_TYPE and bool(mode & 0o111)
        target = str(info.get("linkTarget") or "")
        if not target:
            return False
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return False


def visible_note(step: Step, reason: str, engine: str) -> str:
    """The line the task's log gets when its env could not be hidden from `<engine> inspect`."""
    where = f"in its container's configuration (`{engine} inspect` shows it)"
    return f"tork: the env of step {step.name!r} is {where}: {reason}\n"


def no_shell_note(step: Step, image: str, engine: str) -> str:
    return visible_note(step, f"image {image} has no {SHELL} to source it from a file", engine)
