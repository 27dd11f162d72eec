"""The immutable Jinja sandbox with Tork's names: data-only attribute access, guarded operators, a compile cache."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, Undefined, nodes
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tork_ray.expr._dialect import translate
from tork_ray.expr._functions import FILTERS, FUNCTIONS, guard_repeat
from tork_ray.expr._values import (
    MAX_POW_BITS,
    MAX_TEXT,
    ExprProblem,
    check_items,
    check_text,
    is_number,
    materialize,
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
    expr-lang's type errors and to cap the size of what it builds.
    """

    intercepted_binops = _ARITHMETIC

    def __init__(self) -> None:
        super().__init__(undefined=Missing, autoescape=False)
        self.globals.clear()  # range, dict, lipsum, cycler, joiner, namespace: none of them are Tork's
        self.globals.update(FUNCTIONS)
        self.filters = {name: DEFAULT_FILTERS[name] for name in _KEPT_FILTERS} | FILTERS

    def getattr(self, obj: Any, attribute: str) -> Any:
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
        if isinstance(argument, bool) or not isinstance(argument, int | slice):
            raise ExprProblem(f"an index must be an integer, got {type_name(argument)}")
        try:
            return obj[argument]
        except IndexError:
            return self.undefined(obj=obj, name=str(argument))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        # A missing value is the zero value "" (Tork), so `inputs.nope + "x"` is "x".
        left = "" if isinstance(left, Undefined) else materialize(left)
        right = "" if isinstance(right, Undefined) else materialize(right)
        if is_number(left) and is_number(right):
            if operator == "**":
                _guard_power(left, right)
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


def _guard_power(base: float, exponent: float) -> None:
    """Refuse integer powers whose result would exceed MAX_POW_BITS (10 ** 10 ** 10 would hang the host)."""
    big = _is_int(base) and _is_int(exponent) and abs(base) > 1 and exponent > 0
    if big and exponent * math.log2(abs(base)) > MAX_POW_BITS:
        raise ExprProblem(f"'**': result would have more than {MAX_POW_BITS} bits")


@lru_cache(maxsize=1)
def environment() -> TorkSandbox:
    """The one sandbox: immutable once built, so sharing it between threads and calls is safe."""
    return TorkSandbox()


@dataclass(frozen=True)
class Compiled:
    """A compiled expression and the top-level names it reads (checked against the context at run time)."""

    template: Template
    names: frozenset[str]

    def run(self, context: Mapping[str, Any]) -> Any:
        ctx = self.template.new_context(dict(context))
        for _ in self.template.root_render_func(ctx):
            pass
        return ctx.vars["result"]


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Compiled:
    """Compile one expression (no braces). Raises TemplateSyntaxError or ExprProblem."""
    if len(source) > MAX_TEXT:
        raise ExprProblem("expression is too long")
    env = environment()
    parser = Parser(env, translate(source), state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError(f"unexpected {parser.stream.current.value!r}", parser.stream.current.lineno)
    found = [expr, *expr.find_all((nodes.Concat, nodes.Name))]  # find_all skips the root node itself
    for concat in (n for n in found if isinstance(n, nodes.Concat)):
        # `a ~ b` would format with Python's str() (True, [1, 2]); route operands through string().
        concat.nodes = [nodes.Filter(n, "string", [], [], None, None, lineno=n.lineno) for n in concat.nodes]
    names = frozenset(n.name for n in found if isinstance(n, nodes.Name) and n.ctx == "load")
    expr.set_environment(env)
    body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    return Compiled(env.from_string(nodes.Template(body, lineno=1)), names)
