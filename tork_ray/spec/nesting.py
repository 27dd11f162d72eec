"""How deep a document's lists and maps may nest before anything recursive touches it (the YAML composer, the
JSON decoder, pydantic, the rule walk): a bound derived from `limits.depth`, checked without recursion.

A task nested d levels in parallel/each/subjob sits at most 3·d + 3 containers down (`tasks` list, task map,
`parallel` map per level), and a task's own deepest value (a sub-job webhook's headers) 4 below that; so
3·depth + 12 leaves room for every valid document while the walk over the typed document (tork_ray.spec.safety)
names the exact task that nests too deep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yaml.events import CollectionEndEvent, CollectionStartEvent, MappingStartEvent, NodeEvent, ScalarEvent

from tork_ray.errors import BadRequest
from tork_ray.spec.safety import child_path

if TYPE_CHECKING:
    from tork_ray.settings import LimitsSettings


def max_nesting(limits: LimitsSettings) -> int:
    return 3 * limits.depth + 12


def too_deep(path: str, limits: LimitsSettings) -> BadRequest:
    where = path or "document"
    return BadRequest(
        f"{where} nests deeper than {max_nesting(limits)} lists and maps: "
        f"limits.depth is {limits.depth} levels of parallel/each/subjob"
    )


@dataclass
class _Frame:
    """One open list or map while scanning: where the scan is inside it."""

    is_map: bool
    index: int = -1  # list: the current item
    key: str = ""  # map: the key of the current value
    expect_key: bool = True


def _path(frames: list[_Frame]) -> str:
    path = ""
    for frame in frames:
        path = child_path(path, frame.key if frame.is_map else max(frame.index, 0))
    return path


def check_data(data: Any, limits: LimitsSettings) -> None:
    """Decoded data (JSON) nested deeper than the bound → BadRequest naming limits.depth and the path."""
    bound = max_nesting(limits)
    stack: list[tuple[str, Any, int]] = [("", data, 1)]
    while stack:
        path, value, level = stack.pop()
        if level > bound:
            raise too_deep(path, limits)
        if isinstance(value, dict):
            stack.extend(
                (child_path(path, str(k)), v, level + 1) for k, v in value.items() if isinstance(v, dict | list)
            )
        elif isinstance(value, list):
            stack.extend((child_path(path, i), v, level + 1) for i, v in enumerate(value) if isinstance(v, dict | list))


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)


def json_too_deep(text: str, limits: LimitsSettings) -> BadRequest:
    """The error for a JSON text too deep for the decoder: a linear scan of its brackets finds the path."""
    bound, frames = max_nesting(limits), list[_Frame]()
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        top = frames[-1] if frames else None
        if token in "{[":
            frames.append(_Frame(is_map=token == "{", index=0))  # a JSON list counts its commas
            if len(frames) > bound:
                return too_deep(_path(frames[:-1]), limits)
        elif token in "}]":
            if frames:
                frames.pop()
        elif top is None:
            continue
        elif token == ",":
            top.index += 1
            top.expect_key = True
        elif token == ":":
            top.expect_key = False
        elif top.is_map and top.expect_key:
            top.key = _json_string(token)
    return too_deep("", limits)


def _json_string(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token[1:-1]


def check_yaml_events(events: Iterable[Any], limits: LimitsSettings, refuse: Any) -> None:
    """One pass over a YAML event stream (iterative in libyaml and in PyYAML's parser): `refuse(event)` is
    called on each event (anchors and aliases), and a list or map nested deeper than the bound raises."""
    bound, frames = max_nesting(limits), list[_Frame]()
    for event in events:
        refuse(event)
        if isinstance(event, CollectionEndEvent):
            if frames:
                frames.pop()
            continue
        if not isinstance(event, NodeEvent) or not frames:
            if isinstance(event, CollectionStartEvent):
                frames.append(_Frame(is_map=isinstance(event, MappingStartEvent)))
            continue
        top = frames[-1]
        if not top.is_map:
            top.index += 1
        elif top.expect_key:
            top.key = str(event.value) if isinstance(event, ScalarEvent) else "?"
            top.expect_key = False
        else:
            top.expect_key = True
        if isinstance(event, CollectionStartEvent):
            frames.append(_Frame(is_map=isinstance(event, MappingStartEvent)))
            if len(frames) > bound:
                raise too_deep(_path(frames[:-1]), limits)
