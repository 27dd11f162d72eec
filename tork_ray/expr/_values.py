"""Value formatting (Go-like text, JSON for containers), Tork type names, and size checks against the budget."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Set
from decimal import Decimal
from typing import Any

from jinja2 import Undefined

# Re-exported: the functions, the sandbox and the dialect import these from here.
from tork_ray.expr._budget import ExprProblem as ExprProblem
from tork_ray.expr._budget import current as current
from tork_ray.expr._budget import size_of as size_of


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
    """Approve building a list of `count` items under the active budget (limits.each.items)."""
    current().items(count, what)


def check_text(length: int, what: str) -> None:
    """Approve building a string of `length` characters under the active budget (limits.template.output)."""
    current().text(length, what)


def materialize(value: Any) -> Any:
    """A list for the lazy results of Jinja filters (map, select, reverse, items...); other values unchanged."""
    if isinstance(value, Iterator):
        cap = current().max_items
        items = list(itertools.islice(value, cap + 1))  # never pull more than the cap from a generator
        check_items(len(items), "sequence")
        return items
    return value


def check_size(value: Any, what: str) -> None:
    """Refuse to serialise a value larger than limits.template.output (counted without serialising it)."""
    budget = current()
    cap = budget.max_text
    if budget.weigh(value) > cap:
        raise ExprProblem(f"{what}: value is too large (more than limits.template.output, {cap} characters)")


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
