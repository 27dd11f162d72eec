"""Rules a document obeys whatever its shape, checked in one linear pass with an explicit stack (no recursion, so
a document nested 10,000 deep costs a 400, not a RecursionError):

- the `limits.*` bounds: tasks per document (nested ones included), nesting of parallel/each/subjob, entries of
  any list or map, characters of any string;
- characters no store can hold (NUL: PostgreSQL text and JSONB refuse it; lone UTF-16 surrogates: not Unicode),
  and numbers JSON cannot carry (NaN, infinities);
- `files` names that stay inside the task's directory (tork_ray.spec.paths), in every task, sub-job tasks and
  `each` templates included, and in pre/post/sidecar steps.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tork_ray.spec.models import TaskInput
from tork_ray.spec.paths import file_name_problem, show_name

if TYPE_CHECKING:  # tork_ray.settings imports tork_ray.spec: only the type is needed here
    from tork_ray.settings import LimitsSettings

COMPOSITES = ("parallel", "each", "subjob")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_NAME_PROBLEMS = 20  # one line per bad file name, but a body of 10,000 bad names gets a short answer


def default_limits() -> LimitsSettings:
    from tork_ray.settings import LimitsSettings  # late: see the TYPE_CHECKING import above

    return LimitsSettings()


class Findings:
    """What the walk found. `limits` are the bounds broken (the first place each one is broken); `rules` are
    the per-field problems (characters, file names)."""

    def __init__(self) -> None:
        self.limits: dict[str, str] = {}
        self.rules: list[str] = []

    def limit(self, name: str, line: str) -> None:
        self.limits.setdefault(name, line)

    def rule(self, line: str) -> None:
        if len(self.rules) < _MAX_NAME_PROBLEMS:
            self.rules.append(line)


def child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.match(key):
        return f"{path}[{show_name(key)}]"
    return f"{path}.{key}" if path else key


def check_document(document: BaseModel, limits: LimitsSettings | None = None) -> Findings:
    """Every bound and character rule `document` breaks, walking each value once."""
    limits = limits or default_limits()
    found = Findings()
    tasks = 0
    # (field path, value, parallel/each/subjob blocks around it); children pushed reversed: document order.
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            _check_string(found, path, value, limits)
        elif isinstance(value, float) and not math.isfinite(value):  # YAML .nan/.inf: no JSON column holds them
            found.rule(f"{path} must be a finite number")
        elif isinstance(value, BaseModel):
            if isinstance(value, TaskInput):
                tasks += 1
                if tasks > limits.tasks:
                    found.limit("tasks", f"{path} is one task too many: limits.tasks is {limits.tasks} per document")
                if depth > limits.depth:
                    found.limit(
                        "depth",
                        f"{path} is nested {depth} levels deep in parallel/each/subjob: limits.depth is {limits.depth}",
                    )
                    continue  # nothing below a task too deep is looked at: the document is refused anyway
            _push_fields(found, stack, path, value, depth)
        elif isinstance(value, list | dict):
            _check_container(found, stack, path, value, depth, limits)
    return found


def _push_fields(found: Findings, stack: list[tuple[str, Any, int]], path: str, model: BaseModel, depth: int) -> None:
    # Only the fields the document set: the others hold their defaults, which break no bound.
    given = model.model_fields_set
    composite = isinstance(model, TaskInput)
    children = []
    for name, key in _keys(type(model)):
        if name not in given:
            continue
        value = getattr(model, name)
        if value is None:
            continue
        where = child_path(path, key)
        if name == "files" and isinstance(value, dict):  # a task's or a pre/post/sidecar step's files
            _check_file_names(found, where, value)
        children.append((where, value, depth + 1 if composite and name in COMPOSITES else depth))
    stack.extend(reversed(children))


@functools.cache
def _keys(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, document key) of a model's fields, in declaration order (so problems come in document order)."""
    return tuple((name, field.alias or name) for name, field in model.model_fields.items())


def _check_file_names(found: Findings, path: str, files: dict[str, str]) -> None:
    for name in files:
        problem = file_name_problem(name)
        if problem is not None:
            found.rule(f"{path}: file name {show_name(name)} {problem}")


def _check_container(
    found: Findings,
    stack: list[tuple[str, Any, int]],
    path: str,
    value: list[Any] | dict[str, Any],
    depth: int,
    limits: LimitsSettings,
) -> None:
    if len(value) > limits.list_length:
        found.limit("list", f"{path} has {len(value)} entries: limits.list.length is {limits.list_length}")
        return
    if isinstance(value, list):
        stack.extend((child_path(path, i), item, depth) for i, item in reversed(list(enumerate(value))))
        return
    for key in value:
        _check_string(found, f"{path} (key {show_name(key)})", key, limits)
    stack.extend((child_path(path, k), v, depth) for k, v in reversed(list(value.items())))


def _check_string(found: Findings, path: str, text: str, limits: LimitsSettings) -> None:
    if len(text) > limits.string_length:
        found.limit("string", f"{path} is {len(text)} characters long: limits.string.length is {limits.string_length}")
    if "\x00" in text:
        found.rule(f"{path} must not contain a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            found.rule(f"{path} contains a lone UTF-16 surrogate (not valid Unicode)")
