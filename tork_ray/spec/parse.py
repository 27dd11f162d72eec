"""Decode submitted job documents (JSON or YAML) strictly into models, then validate them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from tork_ray.errors import BadRequest, ValidationFailed
from tork_ray.spec.models import JobInput, ScheduledJobInput, YamlScalar
from tork_ray.spec.validate import Exists, validate_job, validate_scheduled_job

JOB_CONTENT_TYPES = ("application/json", "text/yaml", "application/x-yaml")
SCHEDULED_JOB_CONTENT_TYPES = ("application/json", "text/yaml")

_M = TypeVar("_M", bound=BaseModel)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictConstruction:
    """Construction rules shared by both loaders: YAML 1.2 core scalars, string keys, no merge or duplicate keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise _yaml_bad(key_node.start_mark, "merge keys (<<) are not allowed")
            if not isinstance(key_node, ScalarNode):
                raise _yaml_bad(key_node.start_mark, "mapping keys must be scalars")
            # Keys are always their source text: every map of a job document is keyed by strings, as in Go.
            key = str(key_node.value)
            if key in lines:
                raise _yaml_bad(key_node.start_mark, f'mapping key "{key}" already defined at line {lines[key]}')
            lines[key] = key_node.start_mark.line + 1
            mapping[key] = self.construct_object(value_node, deep=deep)  # type: ignore[attr-defined]
        return mapping


class _StrictLoader(_StrictConstruction, yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars, and no anchors, aliases, merge keys or duplicate keys."""

    # Our own table (not SafeLoader's copy) so that only the YAML 1.2 resolvers below apply.
    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Refusing anchors and aliases outright rules out billion-laughs expansion.
        event = self.peek_event()
        _refuse_anchors(event)
        return super().compose_node(parent, index)


def _refuse_anchors(event: Any) -> None:
    if isinstance(event, AliasEvent):
        raise _yaml_bad(event.start_mark, "aliases are not allowed")
    if isinstance(event, NodeEvent) and event.anchor is not None:
        raise _yaml_bad(event.start_mark, "anchors are not allowed")


_CLoader: Any = getattr(yaml, "CSafeLoader", None)
if _CLoader is not None:

    class _FastStrictLoader(_StrictConstruction, _CLoader):
        """The same rules on libyaml's C parser (several times faster); anchors are refused by a first pass
        over the C parser's events, since its composer cannot be hooked."""


def _yaml_bad(mark: Any, why: str) -> BadRequest:
    return BadRequest(f"yaml: line {mark.line + 1}, column {mark.column + 1}: {why}")


def _construct_scalar(kind: Callable[[str], bool | int | float]) -> Callable[[Any, Any], YamlScalar]:
    def construct(loader: yaml.SafeLoader, node: ScalarNode) -> YamlScalar:
        text = str(loader.construct_scalar(node))
        return YamlScalar(kind(text), text)

    return construct


def _to_int(text: str) -> int:
    if text.startswith(("0x", "0o")):
        return int(text[2:], 16 if text[1] == "x" else 8)
    return int(text)


def _to_float(text: str) -> float:
    t = text.lower().lstrip("+")
    return float(t.replace(".inf", "inf").replace(".nan", "nan"))


# YAML 1.2 core schema, which Go's yaml.v3 follows: no yes/no booleans, no timestamps, no sexagesimals.
_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (_MERGE_TAG, r"^<<$", "<"),
]
for _tag, _pattern, _first in _RESOLVERS:
    _StrictLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_StrictLoader.add_constructor("tag:yaml.org,2002:bool", _construct_scalar(lambda t: t.lower() == "true"))
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_scalar(_to_int))
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_scalar(_to_float))
if _CLoader is not None:  # the very same tables, filled above
    _FastStrictLoader.yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers
    _FastStrictLoader.yaml_constructors = _StrictLoader.yaml_constructors


def _load_yaml(text: str) -> Any:
    if _CLoader is not None:
        try:
            for event in yaml.parse(text, Loader=yaml.CBaseLoader):
                _refuse_anchors(event)
        except yaml.YAMLError:
            pass  # malformed: the pure-Python loader below reports it exactly as before
        else:
            loader = _FastStrictLoader(text)
            return _get_data(loader)
    return _get_data(_StrictLoader(text))


def _get_data(loader: Any) -> Any:
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = f"{exc.problem} ({exc.context})" if exc.context else str(exc.problem)
        raise _yaml_bad(mark, why) if mark else BadRequest(f"yaml: {why}") from exc
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # ValueError/TypeError come from explicitly tagged scalars that do not convert (`!!int abc`).
        raise BadRequest(f"yaml: {exc}") from exc
    finally:
        loader.dispose()


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"json: invalid number {name}")


def _load(body: bytes, kind: str) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8: {exc}") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant) if kind == "json" else _load_yaml(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"json: {exc}") from exc
    except yaml.YAMLError as exc:
        # Raised by the loader's constructor itself (its reader refuses control characters such as NUL), before
        # the parse whose errors _get_data words: it was a 500.
        raise BadRequest(f"yaml: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise BadRequest("document is nested too deeply") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"the document must be a mapping of fields, not {_type_name(data)}")
    return data


def _content_kind(content_type: str | None, allowed: tuple[str, ...], *, missing_message: bool) -> str:
    # Exact match only, as Tork does: "application/json; charset=utf-8" is an unknown content type.
    if not content_type and missing_message:
        raise BadRequest("missing content type")
    if content_type not in allowed:
        raise BadRequest(f"unknown content type: {content_type or ''}")
    return "json" if content_type == "application/json" else "yaml"


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    if isinstance(value, YamlScalar):
        value = value.value
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _expected(error_type: str) -> str | None:
    for prefix, name in (
        ("int_", "integer"),
        ("float_", "number"),
        ("bool_", "boolean"),
        ("string_", "string"),
        ("list_", "list"),
        ("dict_", "mapping"),
        ("model_", "mapping"),
    ):
        if error_type.startswith(prefix):
            return name
    return None


def _problem(error: ErrorDetails) -> str:
    path = _path(error["loc"]) or "document"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown field"
    if error["type"] == "missing":
        return f"{path} is required"
    expected = _expected(error["type"])
    if expected is not None:
        return f"{path}: expected {expected}, got {_type_name(error['input'])}"
    return f"{path}: {error['msg']}"


def _decode(model: type[_M], data: dict[str, Any], *, from_yaml: bool) -> _M:
    try:
        return model.model_validate(data, context={"yaml": from_yaml})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = [_problem(e) for e in errors]
        # Only missing required fields are rule failures; anything else is a malformed document.
        if all(e["type"] == "missing" for e in errors):
            raise ValidationFailed(problems) from None
        raise BadRequest("\n".join(problems)) from None
    except RecursionError as exc:
        raise BadRequest("document is nested too deeply") from exc


def parse_job(
    body: bytes, content_type: str | None, *, user_exists: Exists = None, role_exists: Exists = None
) -> JobInput:
    """Decode and validate a `POST /jobs` body; BadRequest when malformed, ValidationFailed on rule failures."""
    kind = _content_kind(content_type, JOB_CONTENT_TYPES, missing_message=True)
    job = _decode(JobInput, _load(body, kind), from_yaml=kind == "yaml")
    problems = _guard(lambda: validate_job(job, user_exists=user_exists, role_exists=role_exists))
    if problems:
        raise ValidationFailed(problems)
    return job


def parse_scheduled_job(
    body: bytes, content_type: str | None, *, user_exists: Exists = None, role_exists: Exists = None
) -> ScheduledJobInput:
    """Decode and validate a `POST /scheduled-jobs` body (JSON or text/yaml only, as in Tork)."""
    # Tork answers a missing header here with "unknown content type: " (SPEC §1.4); kept as is.
    kind = _content_kind(content_type, SCHEDULED_JOB_CONTENT_TYPES, missing_message=False)
    job = _decode(ScheduledJobInput, _load(body, kind), from_yaml=kind == "yaml")
    problems = _guard(lambda: validate_scheduled_job(job, user_exists=user_exists, role_exists=role_exists))
    if problems:
        raise ValidationFailed(problems)
    return job


def _guard(check: Callable[[], list[str]]) -> list[str]:
    try:
        return check()
    except RecursionError as exc:
        raise BadRequest("document is nested too deeply") from exc
