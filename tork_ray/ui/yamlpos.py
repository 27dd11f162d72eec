"""Where in a YAML document a validation error points: the engine's 400 names a field path
(`tasks[1].timeout is not a valid duration`, `yaml: line 3, column 5: ...`); this finds its line."""

from __future__ import annotations

import re
from typing import Any

import yaml

PATH = re.compile(r"^([A-Za-z_$][\w$-]*(?:\[\d+\]|\.[A-Za-z_$][\w$-]*)*)")
SEGMENT = re.compile(r"\[(\d+)\]|\.?([A-Za-z_$][\w$-]*)")
YAML_LINE = re.compile(r"^yaml: line (\d+)")


def _segments(path: str) -> list[str | int]:
    return [int(index) if index else name for index, name in SEGMENT.findall(path)]


def _walk(node: Any, segments: list[str | int]) -> int | None:
    """The 1-based line of the deepest node along `segments` that exists in the composed document."""
    line = None
    for segment in segments:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(segment, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == segment:
                    line, child = key.start_mark.line + 1, value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(segment, int) and segment < len(node.value):
            child = node.value[segment]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _compose(document: str) -> yaml.Node | None:
    try:
        return yaml.compose(document, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None


def locate(document: str, problems: list[str]) -> list[dict[str, Any]]:
    """Each problem with the field path it names and its line in `document` (None when it names none)."""
    # Composed only for problems that name a field: such a document got past the API's parser and its depth
    # limit, so the (recursive) composer is safe on it; a refusal at a line needs no tree at all.
    needs_tree = any(not YAML_LINE.match(problem) and PATH.match(problem) for problem in problems)
    root = _compose(document) if needs_tree else None
    out = []
    for problem in problems:
        line: int | None = None
        path = ""
        if found := YAML_LINE.match(problem):
            line = int(found.group(1))
        elif (found := PATH.match(problem)) and root is not None:
            path = found.group(1)
            line = _walk(root, _segments(path))
        out.append({"message": problem, "path": path, "line": line})
    return out
