"""The immutable Jinja sandbox with Tork's names: data-only attribute access, guarded and metered operations."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, cast

from jinja2 import Undefined
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tork_ray.expr._budget import MAX_INT_BITS
from tork_ray.expr._functions import FILTERS, FUNCTIONS, guard_repeat
from tork_ray.expr._values import (
    ExprProblem,
    check_items,
    check_text,
    current,
    is_number,
    materialize,
    to_text,
    type_name,
)

# Jinja filters kept as they are: bounded by their input and free of host access. Dropped on purpose:
# center/indent/wordwrap/format/batch/slice (a small input can ask for a huge output), random (not
# deterministic), attr/xmlattr/pprint/urlize/filesizeformat (no use here). Our functions override same names.
_KEPT_FILTERS = (
    "capitalize",
    "count",
    "default",
    "d",
    "dictsort",
    "items",
    "length",
    "list",
    "map",
    "reject",
    "rejectattr",
    "reverse",
    "select",
    "selectattr",
    "sort",
    "title",
    "truncate",
    "unique",
    "urlencode",
    "wordcount",
    "striptags",
)

_ABSENT = object()
_ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "**"})
# Names of the helpers that compile_expression wires into every expression; a user's expression cannot name them.
WEIGH = "_tork_weigh"
CONCAT = "_tork_concat"
SLICE = "_tork_slice"


class Missing(Undefined):
    """A missing map key: renders "" and equals "" and nil, as Tork's zero value does."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undefined) or other is None or (isinstance(other, str) and other == "")

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash("")

    @property
    def _undefined_message(self) -> str:
        return f"{self._undefined_name} is missing and cannot be used here"


class TorkSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed further.

    Attribute access reads data only: map keys (so `inputs.items` is the input named "items", not dict.items)
    and public, non-callable attributes. No method of any object is reachable, which closes str.format,
    `'a'.ljust(10**9)` and the `__class__` walks in one rule. Every arithmetic operator is intercepted to give
    expr-lang's type errors and to cap the size of what it builds. Every function, filter and test is wrapped
    to charge the request's Budget (one step, plus the size of what it is handed) before it runs, so work done
    per item inside `map`/`select` is counted too. Constant folding is off: it would run functions at compile
    time, outside any budget, and keep their results in the compile cache.
    """

    intercepted_binops = _ARITHMETIC

    def __init__(self) -> None:
        super().__init__(undefined=Missing, autoescape=False, optimized=False)
        self.globals.clear()  # range, dict, lipsum, cycler, joiner, namespace: none of them are Tork's
        self.globals.update({name: _metered(name, fn) for name, fn in FUNCTIONS.items()})
        kept = {name: _metered(name, DEFAULT_FILTERS[name], count_result=True) for name in _KEPT_FILTERS}
        ours = {name: _metered(name, fn) for name, fn in FILTERS.items()}
        private = {
            WEIGH: _metered("comparison", _weigh),
            CONCAT: _metered("'~'", _concat),
            SLICE: _metered("slice", _slice),
        }
        self.filters = kept | ours | private
        self.tests = {
            name: _metered(f"test {name}", cast(Callable[..., Any], fn)) for name, fn in DEFAULT_TESTS.items()
        }

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().step("attribute access")
        if isinstance(obj, Undefined):
            return self.undefined(obj=obj, name=attribute)  # inputs.nope.deeper is still just missing
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                if attribute.startswith("__"):  # a probe for Python internals, not a missing input
                    raise ExprProblem(f"access to {attribute} is not allowed") from None
                return self.undefined(obj=obj, name=attribute)
        if attribute.startswith("_"):
            raise ExprProblem(f"access to {attribute} is not allowed")
        value = getattr(obj, attribute, _ABSENT)
        if value is _ABSENT or callable(value) or not self.is_safe_attribute(obj, attribute, value):
            hint = f" (methods are not available: write {attribute}(...))" if attribute in FUNCTIONS else ""
            raise ExprProblem(f"{type_name(obj)} has no field {attribute}{hint}")
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().step("index")
        if isinstance(obj, Undefined):
            return self.undefined(obj=obj, name=str(argument))
        if isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                if isinstance(argument, str) and argument.startswith("__"):
                    raise ExprProblem(f"access to {argument} is not allowed") from None
                return self.undefined(obj=obj, name=str(argument))
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if not isinstance(obj, str | list | tuple):
            raise ExprProblem(f"cannot index a {type_name(obj)}")
        if isinstance(argument, bool) or not isinstance(argument, int):
            raise ExprProblem(f"an index must be an integer, got {type_name(argument)}")
        try:
            return obj[argument]
        except IndexError:
            return self.undefined(obj=obj, name=str(argument))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        # A missing value is the zero value "" (Tork), so `inputs.nope + "x"` is "x".
        left = "" if isinstance(left, Undefined) else materialize(left)
        right = "" if isinstance(right, Undefined) else materialize(right)
        current().step(f"'{operator}'", left, right)
        if is_number(left) and is_number(right):
            _guard_int(operator, left, right)
            result = self.binop_table[operator](left, right)
            if isinstance(result, complex):  # (-8) ** 0.5: Python goes complex, expr-lang has no such type
                raise ExprProblem("'**': result is not a real number")
            return result
        if operator == "+" and isinstance(left, str) and isinstance(right, str):
            check_text(len(left) + len(right), "'+'")
            return left + right
        if operator == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
            check_items(len(left) + len(right), "'+'")
            return [*left, *right]
        if operator == "*" and _repeatable(left) and _is_int(right):
            guard_repeat(left, right, operator)
            return left * right
        if operator == "*" and _is_int(left) and _repeatable(right):
            guard_repeat(right, left, operator)
            return left * right
        hint = ""
        text = left if isinstance(left, str) else right if isinstance(right, str) else None
        if text is not None and (is_number(left) or is_number(right)) and _numeric(text):
            hint = " (use int(...) or float(...) to convert the string)"
        raise ExprProblem(f"invalid operation: {type_name(left)} {operator} {type_name(right)}{hint}")


def _metered(what: str, fn: Callable[..., Any], *, count_result: bool = False) -> Callable[..., Any]:
    """`fn`, charging the active budget one step plus the size of its arguments before each call.

    Filters that take the Jinja context or environment first (map, select...) are not charged for it. With
    `count_result`, a list or string the call returns is counted as built (Jinja's own filters, which do not
    check what they build; ours check before building).
    """
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(fn)  # keeps jinja_pass_arg, and the name Python's argument errors quote
    def metered(*args: Any, **kwargs: Any) -> Any:
        current().step(what, *args[skip:], *kwargs.values())
        result = fn(*args, **kwargs)
        if count_result and not any(result is arg for arg in args):
            _count_built(what, result)
        return result

    return metered


def _count_built(what: str, value: Any) -> None:
    if isinstance(value, str):
        check_text(len(value), what)
    elif isinstance(value, list | tuple | range):
        check_items(len(value), what)


def _weigh(value: Any) -> Any:
    """Identity: wraps each operand of a comparison so that its size is charged (`==` and `in` scan them)."""
    return value


def _concat(values: list[Any]) -> str:
    """`a ~ b ~ c`: every operand as text (Tork's formatting, not Python's str()), size-checked before joining."""
    texts = [to_text(value) for value in values]
    check_text(sum(map(len, texts)), "'~'")
    return "".join(texts)


def _slice(obj: Any, start: Any, stop: Any, step: Any) -> Any:
    """`x[a:b:c]`: Jinja slices without the sandbox's getitem, so compile_expression routes slices here."""
    if isinstance(obj, Undefined):
        return obj  # a missing value is "", and so is any slice of it
    if not isinstance(obj, str | list | tuple):
        raise ExprProblem(f"cannot slice a {type_name(obj)}")
    if any(bound is not None and not _is_int(bound) for bound in (start, stop, step)):
        raise ExprProblem("slice bounds must be integers")
    part = slice(start, stop, step)
    size = len(range(len(obj))[part])  # a slice copies: count what it builds, before building it
    (check_text if isinstance(obj, str) else check_items)(size, "slice")
    return obj[part]


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _repeatable(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _guard_int(operator: str, left: float, right: float) -> None:
    """Refuse integer products and powers of more than MAX_INT_BITS bits (10 ** 10 ** 10 would hang the host)."""
    if not (_is_int(left) and _is_int(right)):
        return
    assert isinstance(left, int) and isinstance(right, int)
    if operator == "*":
        bits = left.bit_length() + right.bit_length()
    elif operator == "**" and abs(left) > 1 and right > 0:
        # The exponent alone says it when it is large (and float(10 ** 400) would overflow).
        bits = MAX_INT_BITS + 1 if right > MAX_INT_BITS else math.ceil(right * math.log2(abs(left)))
    else:
        return
    if bits > MAX_INT_BITS:
        raise ExprProblem(f"'{operator}': result would have more than {MAX_INT_BITS} bits")


@lru_cache(maxsize=1)
def environment() -> TorkSandbox:
    """The one sandbox: immutable once built, so sharing it between threads and calls is safe."""
    return TorkSandbox()
