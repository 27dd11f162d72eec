"""Tork's expression functions (sequence, randomInt, fromJSON, ... and expr-lang's built-ins), size-capped."""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import Undefined

from tork_ray.expr._values import (
    ExprProblem,
    check_items,
    check_text,
    current,
    is_number,
    materialize,
    size_of,
    to_json,
    to_text,
    type_name,
)

Function = Callable[..., Any]

FUNCTIONS: dict[str, Function] = {}  # global names, called as `upper(x)`
FILTERS: dict[str, Function] = {}  # the same functions as Jinja filters, `x | upper`

_INT_TEXT = re.compile(r"[+-]?\d+")


def _register(name: str, *, as_filter: bool = True) -> Callable[[Function], Function]:
    def decorate(fn: Function) -> Function:
        # Python builds "takes 2 positional arguments" messages from the qualname: show the Tork name.
        fn.__name__ = fn.__qualname__ = name
        FUNCTIONS[name] = fn
        if as_filter:
            FILTERS[name] = fn
        return fn

    return decorate


def _text(fn: str, value: Any) -> str:
    """A string argument; a missing value counts as "" (the zero value Tork gives missing keys)."""
    if isinstance(value, Undefined):
        return ""
    if not isinstance(value, str):
        raise ExprProblem(f"{fn}(): expected a string, got {type_name(value)}")
    return value


def _integer(fn: str, what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        hint = " (use int(...) to convert)" if isinstance(value, str) else ""
        raise ExprProblem(f"{fn}(): {what} must be an integer, got {type_name(value)}{hint}")
    return value


def _number(fn: str, value: Any) -> int | float:
    if not is_number(value):
        raise ExprProblem(f"{fn}(): expected a number, got {type_name(value)}")
    return value


def _array(fn: str, value: Any) -> list[Any] | tuple[Any, ...]:
    value = materialize(value)
    if not isinstance(value, list | tuple):
        raise ExprProblem(f"{fn}(): expected an array, got {type_name(value)}")
    return value


# --- Tork's own -----------------------------------------------------------------------------------------


@_register("sequence", as_filter=False)
def _sequence(start: Any, stop: Any) -> list[int]:
    first, end = _integer("sequence", "start", start), _integer("sequence", "stop", stop)
    check_items(end - first, "sequence")
    return list(range(first, end))  # half-open; empty when stop <= start


@_register("randomInt", as_filter=False)  # not a filter: Jinja would fold a constant filter call at compile time
def _random_int(*args: Any) -> int:
    if len(args) > 1:
        raise ExprProblem(f"randomInt(): expected at most 1 argument, got {len(args)}")
    if not args:
        return random.getrandbits(63)  # Go's rand.Int(): a non-negative int64
    bound = _integer("randomInt", "the bound", args[0])
    if bound <= 0:
        raise ExprProblem("randomInt(): the bound must be positive")
    return random.randrange(bound)


@_register("fromJSON")
def _from_json(value: Any) -> Any:
    try:
        return json.loads(_text("fromJSON", value))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ExprProblem(f"fromJSON(): invalid JSON: {getattr(exc, 'msg', 'too deeply nested')}") from None


@_register("toJSON")
def _to_json(value: Any) -> str:
    # expr-lang's toJSON is Go's MarshalIndent(v, "", "  "): indented, map keys sorted.
    text = to_json(_sorted_maps(value), indent=2)
    check_text(len(text), "toJSON")
    return text


def _sorted_maps(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted_maps(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_sorted_maps(v) for v in value]
    return value


# --- conversions ------------------------------------------------------------------------------------------


@_register("int")
def _int(value: Any) -> int:
    if isinstance(value, bool) or value is None or isinstance(value, Undefined):
        raise ExprProblem(f"int(): cannot convert {type_name(value)} to int")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprProblem("int(): cannot convert a non-finite float to int")
        return int(value)
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value.strip()):
            raise ExprProblem("int(): the string is not an integer")
        try:
            return int(value.strip())
        except ValueError:
            raise ExprProblem("int(): the integer is too large") from None
    raise ExprProblem(f"int(): cannot convert {type_name(value)} to int")


@_register("float")
def _float(value: Any) -> float:
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ExprProblem("float(): the string is not a number") from None
    raise ExprProblem(f"float(): cannot convert {type_name(value)} to float")


@_register("string")
def _string(value: Any) -> str:
    return to_text(value)


# --- strings ------------------------------------------------------------------------------------------------


@_register("len")
def _len(value: Any) -> int:
    value = materialize(value)
    if isinstance(value, Undefined):
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExprProblem(f"len(): invalid argument of type {type_name(value)}")


@_register("upper")
def _upper(value: Any) -> str:
    return _text("upper", value).upper()


@_register("lower")
def _lower(value: Any) -> str:
    return _text("lower", value).lower()


@_register("trim")
def _trim(value: Any, chars: Any = None) -> str:
    return _text("trim", value).strip(None if chars is None else _text("trim", chars))


@_register("split")
def _split(value: Any, sep: Any, count: Any = -1) -> list[str]:
    text, separator, n = _text("split", value), _text("split", sep), _integer("split", "n", count)
    if n == 0:
        return []
    if separator == "":  # Go splits into characters
        check_items(len(text), "split")
        parts = list(text)
        return parts if n < 0 or n >= len(parts) else [*parts[: n - 1], "".join(parts[n - 1 :])]
    check_items(text.count(separator) + 1, "split")
    return text.split(separator, n - 1 if n > 0 else -1)


@_register("join")
def _join(value: Any, sep: Any = "") -> str:
    items, separator = _array("join", value), _text("join", sep)
    check_items(len(items), "join")
    texts = [to_text(item) for item in items]
    check_text(sum(map(len, texts)) + len(separator) * max(len(texts) - 1, 0), "join")
    return separator.join(texts)


@_register("replace")
def _replace(value: Any, old: Any, new: Any) -> str:
    text, before, after = _text("replace", value), _text("replace", old), _text("replace", new)
    hits = text.count(before) if before else len(text) + 1  # "" matches between every character, as in Go
    check_text(len(text) + hits * (len(after) - len(before)), "replace")
    return text.replace(before, after)


@_register("repeat")
def _repeat(value: Any, count: Any) -> str:
    text, n = _text("repeat", value), _integer("repeat", "count", count)
    if n < 0:
        raise ExprProblem("repeat(): negative count")
    check_text(len(text) * n, "repeat")
    return text * n


@_register("contains")
def _contains(container: Any, item: Any) -> bool:
    container = materialize(container)
    if isinstance(container, str):
        return _text("contains", item) in container
    if isinstance(container, list | tuple | Mapping):
        return item in container
    if isinstance(container, Undefined):
        return False
    raise ExprProblem(f"contains(): invalid argument of type {type_name(container)}")


@_register("startsWith")
def _starts_with(value: Any, prefix: Any) -> bool:
    return _text("startsWith", value).startswith(_text("startsWith", prefix))


@_register("endsWith")
def _ends_with(value: Any, suffix: Any) -> bool:
    return _text("endsWith", value).endswith(_text("endsWith", suffix))


@_register("hasPrefix")
def _has_prefix(value: Any, prefix: Any) -> bool:
    return _text("hasPrefix", value).startswith(_text("hasPrefix", prefix))


@_register("hasSuffix")
def _has_suffix(value: Any, suffix: Any) -> bool:
    return _text("hasSuffix", value).endswith(_text("hasSuffix", suffix))


@_register("indexOf")
def _index_of(value: Any, item: Any) -> int:
    if isinstance(value, list | tuple):
        return next((i for i, v in enumerate(value) if v == item), -1)
    return _text("indexOf", value).find(_text("indexOf", item))


@_register("toBase64")
def _to_base64(value: Any) -> str:
    text = _text("toBase64", value)
    check_text(len(text.encode()) * 4 // 3 + 4, "toBase64")
    return base64.b64encode(text.encode()).decode("ascii")


@_register("fromBase64")
def _from_base64(value: Any) -> str:
    try:
        return base64.b64decode(_text("fromBase64", value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ExprProblem("fromBase64(): not valid base64-encoded UTF-8 text") from None


# --- maps, arrays, numbers --------------------------------------------------------------------------------


@_register("keys")
def _keys(value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        raise ExprProblem(f"keys(): expected a map, got {type_name(value)}")
    return list(value.keys())


@_register("values")
def _values(value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        raise ExprProblem(f"values(): expected a map, got {type_name(value)}")
    return list(value.values())


@_register("first")
def _first(value: Any) -> Any:
    items = _array("first", value)
    return items[0] if items else None


@_register("last")
def _last(value: Any) -> Any:
    items = _array("last", value)
    return items[-1] if items else None


@_register("abs")
def _abs(value: Any) -> int | float:
    return abs(_number("abs", value))


def _numbers(fn: str, args: tuple[Any, ...]) -> list[int | float]:
    # expr-lang accepts both max(1, 2, 3) and max([1, 2, 3])
    single = materialize(args[0]) if len(args) == 1 else None
    items = list(single) if isinstance(single, list | tuple) else list(args)
    if not items:
        raise ExprProblem(f"{fn}(): no values")
    return [_number(fn, item) for item in items]


@_register("min")
def _min(*args: Any) -> int | float:
    return min(_numbers("min", args))


@_register("max")
def _max(*args: Any) -> int | float:
    return max(_numbers("max", args))


@_register("sum")
def _sum(value: Any) -> int | float:
    return sum(_number("sum", item) for item in _array("sum", value))


@_register("ceil")
def _ceil(value: Any) -> float:
    return float(math.ceil(_number("ceil", value)))


@_register("floor")
def _floor(value: Any) -> float:
    return float(math.floor(_number("floor", value)))


@_register("round")
def _round(value: Any) -> float:
    number = _number("round", value)
    return math.copysign(math.floor(abs(number) + 0.5), number)  # Go rounds half away from zero


def guard_repeat(operand: str | list[Any] | tuple[Any, ...], count: int, operator: str) -> None:
    """Caps for `str * n` and `list * n`, checked before Python allocates the result."""
    n = max(count, 0)
    if isinstance(operand, str):
        check_text(len(operand) * n, f"'{operator}'")
        return
    check_items(len(operand) * n, f"'{operator}'")
    # n shared references to one big element are cheap to build but huge to render or compare: weigh them.
    cap = current().max_text
    if n and size_of(operand, cap // n + 1) * n > cap:
        raise ExprProblem(f"'{operator}': result would be larger than limits.template.output ({cap} characters)")
