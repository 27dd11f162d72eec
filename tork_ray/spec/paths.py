"""The one rule for a file name from a job (`files` keys): a relative path that stays inside the task's directory.

Shared by submit validation (a 400 naming the field and the name) and by the runtimes, which check again where
they write: `files` can also reach a worker by other routes than a validated submit (a stored job from an older
version, a library caller), so the writer must not trust that validation ran.
"""

from __future__ import annotations

import json

_SHOWN = 200  # characters of a name quoted in a message: enough to recognise it, never a whole body


def file_name_problem(name: str) -> str | None:
    """Why `name` may not be written into a task's directory, or None when it may."""
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL character"
    if name.startswith("/"):
        return "is an absolute path (names are relative to the task's directory)"
    parts = name.split("/")
    if ".." in parts:
        return "has a .. segment (names must stay inside the task's directory)"
    if parts[-1] in ("", "."):
        return "names a directory, not a file"
    return None


def file_name_parts(name: str) -> list[str]:
    """The directory segments and file name of an allowed name ("a//./b" -> ["a", "b"]); ValueError otherwise."""
    problem = file_name_problem(name)
    if problem is not None:
        raise ValueError(f"file name {show_name(name)} {problem}")
    return [part for part in name.split("/") if part not in ("", ".")]


def show_name(name: str) -> str:
    """A name as a message quotes it: JSON-escaped (NUL and control characters visible) and cut short."""
    cut = name if len(name) <= _SHOWN else name[:_SHOWN] + "…"
    shown = json.dumps(cut, ensure_ascii=False)
    try:
        shown.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its escape can travel in a JSON answer or a log
        shown = json.dumps(cut)
    return shown
