"""Decode submitted job documents (JSON or YAML) strictly into models, then validate them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from tork_ray.errors import BadRequest, ValidationFailed
from tork_ray.spec.models import JobInput, ScheduledJobInput, YamlScalar
from tork_ray.spec.nesting import check_data, check_yaml_events, json_too_deep, too_deep
from tork_ray.spec.safety import default_limits
from tork_ray.spec.validate import Exists, validate_job, validate_scheduled_job
from tork_ray.webhooks.targets import TargetPolicy

if TYPE_CHECKING:  # tork_ray.settings imports tork_ray.spec: only the type is needed here
    from tork_ray.settings import LimitsSettings

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
_EventLoader: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
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


def _load_yaml(text: str, limits: LimitsSettings, *, exact_errors: bool = True) -> Any:
    # A first pass over the parser's events (a state machine, no recursion) refuses anchors and aliases and
    # bounds the nesting, before the composer (recursive, in C or Python) sees the document.
    try:
        check_yaml_events(yaml.parse(text, Loader=_EventLoader), limits, _refuse_anchors)
    except yaml.YAMLError as exc:
        if isinstance(exc, yaml.MarkedYAMLError) and "nesting depth" in str(exc.problem):
            # libyaml's own bound (1,000 flow levels), met before any event: its position names the place.
            raise _yaml_bad(exc.problem_mark, too_deep("", limits).message) from None
        if not exact_errors:
            raise BadRequest("yaml: malformed") from None
        return _get_data(lambda: _StrictLoader(text))  # malformed: the pure-Python loader reports it exactly
    return _get_data(lambda: _FastStrictLoader(text) if _CLoader is not None else _StrictLoader(text))


def _get_data(make_loader: Callable[[], Any]) -> Any:
    loader = None
    try:
        loader = make_loader()  # the reader already refuses some input (control characters) here
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = f"{exc.problem} ({exc.context})" if exc.context else str(exc.problem)
        raise _yaml_bad(mark, why) if mark else BadRequest(f"yaml: {why}") from exc
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # ValueError/TypeError come from explicitly tagged scalars that do not convert (`!!int abc`).
        raise BadRequest(f"yaml: {exc}") from exc
    finally:
        if loader is not None:
            loader.dispose()


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"json: invalid number {name}")


def _load_json(text: str, limits: LimitsSettings) -> Any:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise json_too_deep(text, limits) from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python converts (4,300 digits)
        raise BadRequest(f"json: {exc}") from None
    check_data(data, limits)
    return data


def _load(body: bytes, kind: str, limits: LimitsSettings) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8: {exc}") from exc
    try:
        data = _load_json(text, limits) if kind == "json" else _load_yaml(text, limits)
    except yaml.YAMLError as exc:
        # Raised by the loader's constructor itself (its reader refuses control characters such as NUL), before
        # the parse whose errors _get_data words: it was a 500.
        raise BadRequest(f"yaml: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:  # a backstop: both loaders bound the nesting before anything recursive runs
        raise too_deep("", limits) from exc
    if not isinstance(data, dict):
        raise BadRequest(f"the document must be a mapping of fields, not {_type_name(data)}")
    return data


def loose_document(body: bytes) -> Any:
    """Whatever a rejected body holds, or None: only to know which secrets to keep out of its error message.
    Bounded like the strict loaders (nesting, no aliases), and never the slow pure-Python YAML parser."""
    limits = default_limits()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for load in (_load_json, lambda t, lim: _load_yaml(t, lim, exact_errors=False)):
        try:
            return _plain(load(text, limits))
        except (BadRequest, RecursionError):
            continue
    return None


def _plain(data: Any) -> Any:
    """YAML scalars as their text, like the strings a job keeps (recursive: the nesting is bounded by now)."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return str(data) if isinstance(data, YamlScalar) else data


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
        raise BadRequest("document is nested too deeply (limits.depth)") from exc


def parse_job(
    body: bytes,
    content_type: str | None,
    *,
    user_exists: Exists = None,
    role_exists: Exists = None,
    limits: LimitsSettings | None = None,
    webhook_targets: TargetPolicy | None = None,
) -> JobInput:
    """Decode and validate a `POST /jobs` body; BadRequest when malformed, ValidationFailed on rule failures.
    `limits` (default LimitsSettings()) bounds the document: tasks, nesting, list entries, string lengths."""
    limits = limits or default_limits()
    kind = _content_kind(content_type, JOB_CONTENT_TYPES, missing_message=True)
    job = _decode(JobInput, _load(body, kind, limits), from_yaml=kind == "yaml")
    problems = _guard(
        lambda: validate_job(
            job, user_exists=user_exists, role_exists=role_exists, limits=limits, webhook_targets=webhook_targets
        )
    )
    if problems:
        raise ValidationFailed(problems)
    return job


def parse_scheduled_job(
    body: bytes,
    content_type: str | None,
    *,
    user_exists: Exists = None,
    role_exists: Exists = None,
    limits: LimitsSettings | None = None,
    webhook_targets: TargetPolicy | None = None,
) -> ScheduledJobInput:
    """Decode and validate a `POST /scheduled-jobs` body (JSON or text/yaml only, as in Tork)."""
    limits = limits or default_limits()
    # Tork answers a missing header here with "unknown content type: " (SPEC §1.4); kept as is.
    kind = _content_kind(content_type, SCHEDULED_JOB_CONTENT_TYPES, missing_message=False)
    job = _decode(ScheduledJobInput, _load(body, kind, limits), from_yaml=kind == "yaml")
    problems = _guard(
        lambda: validate_scheduled_job(
            job, user_exists=user_exists, role_exists=role_exists, limits=limits, webhook_targets=webhook_targets
        )
    )
    if problems:
        raise ValidationFailed(problems)
    return job


def _guard(check: Callable[[], list[str]]) -> list[str]:
    try:
        return check()
    except RecursionError as exc:
        raise BadRequest("document is nested too deeply (limits.depth)") from exc
