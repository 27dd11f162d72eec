"""Compiling one expression (no braces) into a sandboxed Jinja template, with Tork's rewrites, and caching it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from tork_ray.expr._dialect import translate
from tork_ray.expr._sandbox import CONCAT, SLICE, WEIGH, environment

# Only short expressions are cached: the cache holds up to 4096 of them, and a long one is rare and unlikely to
# come back. Each entry's source and template stay small, so the cache's memory stays bounded.
CACHED_SOURCE = 2048


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


def compile_source(source: str) -> Compiled:
    """Compile one expression, through the cache when it is short. Raises TemplateSyntaxError or ExprProblem."""
    return compile_expression(source) if len(source) <= CACHED_SOURCE else _build(source)


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Compiled:
    """The cached compile of a short expression (see compile_source)."""
    return _build(source)


def _build(source: str) -> Compiled:
    env = environment()
    parser = Parser(env, translate(source), state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError(f"unexpected {parser.stream.current.value!r}", parser.stream.current.lineno)
    found = [expr, *expr.find_all(nodes.Node)]  # find_all skips the root node itself, hence `expr` first
    for node in found:
        if isinstance(node, nodes.Filter | nodes.Test) and node.name.startswith("_"):
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            raise TemplateSyntaxError(f"No {kind} named {node.name!r}.", node.lineno)
    for node in reversed(found):  # descendants before their ancestors: each rewrite sees rewritten children
        _meter(node)
    if isinstance(expr, nodes.Getitem) and isinstance(expr.arg, nodes.Slice):
        expr = _sliced(expr)  # the root has no parent to rewrite it in place
    names = frozenset(n.name for n in found if isinstance(n, nodes.Name) and n.ctx == "load")
    expr.set_environment(env)
    body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    return Compiled(env.from_string(nodes.Template(body, lineno=1)), names)


def _meter(node: nodes.Node) -> None:
    """Route the operations Jinja runs without the sandbox's hooks through metered helpers, in place.

    `a ~ b ~ c` becomes one guarded join of the operands as text (Jinja would use Python's str() and build a
    string of any size); each operand of a comparison passes through an identity filter that charges its size,
    since `==` and `in` scan their operands; `x[a:b]` (Jinja slices directly) becomes a checked slice.
    """
    for field in node.fields:  # slices are rewritten by their parent, which holds the reference
        child = getattr(node, field)
        if _is_slice(child):
            setattr(node, field, _sliced(child))
        elif isinstance(child, list):
            setattr(node, field, [_sliced(item) if _is_slice(item) else item for item in child])
    if isinstance(node, nodes.Concat):
        operands = nodes.List(node.nodes, lineno=node.lineno)
        node.nodes = [nodes.Filter(operands, CONCAT, [], [], None, None, lineno=node.lineno)]
    elif isinstance(node, nodes.Compare):
        node.expr = _weighed(node.expr)
        for operand in node.ops:
            operand.expr = _weighed(operand.expr)


def _is_slice(node: Any) -> bool:
    return isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice)


def _sliced(node: nodes.Getitem) -> nodes.Expr:
    bounds = node.arg
    assert isinstance(bounds, nodes.Slice)
    args = [bound or nodes.Const(None, lineno=node.lineno) for bound in (bounds.start, bounds.stop, bounds.step)]
    return nodes.Filter(node.node, SLICE, args, [], None, None, lineno=node.lineno)


def _weighed(node: nodes.Expr) -> nodes.Expr:
    return nodes.Filter(node, WEIGH, [], [], None, None, lineno=node.lineno)
