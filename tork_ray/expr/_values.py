"""Value formatting (Go-like text, JSON for containers), Tork type names, and the resource caps."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Set
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from jinja2 import Undefined

# Caps that keep one expression from exhausting the host: every builder of big values checks them
# *before* allocating (sequence, repeat, `*`, join, replace, split, toJSON, rendering of containers).
MAX_ITEMS = 100_000
MAX_TEXT = 1_000_000
MAX_POW_BITS = 4096
# What one evaluation may build in total (an item counts as 8 characters). Per-value caps alone would let
# `map` multiply them: `split(repeat('a', 100000), '') | map('repeat', 1000000)` asks for 100 GB.
MAX_TOTAL = 10 * MAX_TEXT
_ITEM_COST = 8

_budget: ContextVar[list[int] | None] = ContextVar("tork_ray_expr_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """Scope one evaluation: what check_items/check_text approve is counted against MAX_TOTAL."""
    token = _budget.set([0])
    try:
        yield
    finally:
        _budget.reset(token)


def _spend(amount: int, what: str) -> None:
    spent = _budget.get()
    if spent is None:
        return
    spent[0] += amount
    if spent[0] > MAX_TOTAL:
        raise ExprProblem(f"{what}: the expression builds more than {MAX_TOTAL} characters in all")


class ExprProblem(Exception):
    """Raised inside an expression (by a function, operator or guard); the engine wraps it into ExpressionError."""


def type_name(value: Any) -> str:
    """Tork's (Go/expr) names for types, so errors read the same to a Tork user."""
    if value is None:
        return "nil"
    if isinstance(value, Undefined):
        return "missing value"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    if callable(value):
        return "func"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_items(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        raise ExprProblem(f"{what}: result would have {count} items, more than the limit of {MAX_ITEMS}")
    _spend(count * _ITEM_COST, what)


def check_text(length: int, what: str) -> None:
    if length > MAX_TEXT:
        raise ExprProblem(f"{what}: result would be {length} characters, more than the limit of {MAX_TEXT}")
    _spend(length, what)


def materialize(value: Any) -> Any:
    """A list for the lazy results of Jinja filters (map, select, reverse, items...); other values unchanged."""
    if isinstance(value, Iterator):
        items = list(itertools.islice(value, MAX_ITEMS + 1))  # never pull more than the cap from a generator
        check_items(len(items), "sequence")
        return items
    return value


def size_of(value: Any, limit: int = MAX_TEXT) -> int:
    """Rough size in characters of `value` serialised with indentation; stops counting once past `limit`.

    Iterative (no recursion limit) and bounded by `limit` work, so it is safe on shared-reference structures
    such as `[[1] * 1000] * 1000` whose serialisation would be huge.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 4 + 2 * depth
                if total > limit:
                    return total
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple | Set):
            total += 2
            for child in item:
                total += 2 + 2 * depth
                if total > limit:
                    return total
                stack.append((child, depth + 1))
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
        if total > limit:
            return total
    return total


def check_size(value: Any, what: str) -> None:
    size = size_of(value)
    if size > MAX_TEXT:
        raise ExprProblem(f"{what}: value is too large (more than {MAX_TEXT} characters)")


def go_float(value: float) -> str:
    """A float as Go's `%v` prints it (strconv 'g', shortest digits).

    Go switches to exponent form when the decimal exponent is < -4 or >= 6 (its "precision 6" rule for the
    shortest format): 2.5 → "2.5", 2.0 → "2", 123456.0 → "123456", 1e6 → "1e+06", 0.00001 → "1e-05".
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    point = len(text) + exponent  # position of the decimal point within `text`
    exp10 = point - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        return ""
    if callable(value):  # str() of a function names its module and address: never print it
        raise TypeError("a function is not a value")
    if isinstance(value, Set):
        return list(value)
    return str(value)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """JSON text of `value` (size-checked first). indent=None → compact, as used when rendering containers."""
    check_size(value, "toJSON")
    if isinstance(value, Undefined):
        value = ""
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ExprProblem(f"toJSON: cannot encode value: {exc}") from None


def to_text(value: Any) -> str:
    """How a segment's value is written into the surrounding text (SPEC §3.1, with tork_ray's choices).

    bool → true/false (Go), int → digits, float → Go %v, nil and missing values → "" (Go prints <nil>;
    an empty string is what a shell script wants), str as is, lists and maps → compact JSON (more useful
    than Go's `[1 2 3]` / `map[a:1]`, and what `fromJSON` reads back).
    """
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, str):
        return str(value)
    value = materialize(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # Python refuses ints of more than 4300 digits
            raise ExprProblem("integer is too large to print") from None
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list | tuple | Mapping | Set):
        return to_json(value)
    if callable(value):  # `{{ sequence }}` without a call: str() would show a module and an address
        raise ExprProblem("a function is not a value (call it)")
    return str(value)
