"""What one request's evaluation may cost (limits.*), metered as it goes and refused before it is spent.

Every public entry point runs under one Budget: the caller's (evaluate_task shares one across all the fields of a
task) or a new one made from the `limits` it was given. A Budget bounds:

* each value: a string of at most limits.template.output characters, a list of at most limits.each.items items,
  an integer of at most MAX_INT_BITS bits;
* volume, for the whole request: characters built plus characters of the operands handed to functions, filters,
  tests, operators and comparisons, at most VOLUME_FACTOR x limits.template.output. This is work done at C speed
  (copying, scanning, comparing), about a millisecond per million characters;
* steps, for the whole request: one per call of a function, filter, test or operator and per attribute or item
  access, plus a charge per expression compiled or run that follows Jinja's cost (see `compile`). A step is
  Python-level work of a few microseconds at most, so MAX_STEPS keeps a request to about half a second of CPU
  at worst on a busy two-core machine, whatever its expressions do. It also means one request can push at
  most about 100,000 items through `map`/`select`: enough to pass over a whole each list once.

The active Budget lives in a context variable set by `Budget.active()` for the duration of one call: the hooks
of the sandbox and the functions read it there, so no limit is ever a process-wide setting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tork_ray.settings import LimitsSettings

MAX_INT_BITS = 4096
VOLUME_FACTOR = 10
MAX_STEPS = 100_000
# Measured against a step (one call inside `map`): compiling an expression costs Jinja about 150 steps plus a
# few per character of dense source; running one, about 20 steps plus one per 8 characters.
COMPILE_STEPS = 150
COMPILE_STEPS_PER_CHAR = 5
RUN_STEPS = 20
RUN_CHARS_PER_STEP = 8
ITEM_VOLUME = 8  # an item of a built list weighs as much as 8 characters
_SCALARS = frozenset({int, float, bool, type(None)})

_active: ContextVar[Budget | None] = ContextVar("tork_ray_expr_budget", default=None)


class ExprProblem(Exception):
    """Raised inside an expression (by a function, operator or guard); the engine wraps it into ExpressionError."""


class Budget:
    """The caps of one request's evaluation and what it has used so far (not thread-safe: one per request)."""

    def __init__(self, limits: LimitsSettings | None = None) -> None:
        self.limits = limits or LimitsSettings()
        self.max_text = self.limits.template_output
        self.max_items = self.limits.each_items
        self.max_volume = VOLUME_FACTOR * self.limits.template_output
        self.volume = 0
        self.steps = 0
        # Deep sizes already measured, by object id; the object is kept so that its id is not reused meanwhile.
        self._sizes: dict[int, tuple[Any, int]] = {}
        self._compiled: set[str] = set()  # the expressions this request has paid the compile charge for

    @contextmanager
    def active(self) -> Iterator[Budget]:
        """Make this the budget that hooks and functions charge, for the duration of the block."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def text(self, length: int, what: str) -> None:
        """Approve building a string of `length` characters."""
        if length > self.max_text:
            raise ExprProblem(
                f"{what}: result would be {length} characters, more than limits.template.output ({self.max_text})"
            )
        self.spend(length, what)

    def items(self, count: int, what: str) -> None:
        """Approve building a list of `count` items."""
        if count > self.max_items:
            raise ExprProblem(
                f"{what}: result would have {count} items, more than limits.each.items ({self.max_items})"
            )
        self.spend(count * ITEM_VOLUME, what)

    def spend(self, volume: int, what: str) -> None:
        self.volume += max(volume, 0)
        if self.volume > self.max_volume:
            raise ExprProblem(
                f"{what}: the evaluation handles more than {self.max_volume} characters in all "
                f"({VOLUME_FACTOR} x limits.template.output)"
            )

    def step(self, what: str, *operands: Any, steps: int = 1) -> None:
        """Charge one call (or `steps`) and the volume of the operands it is handed."""
        self.steps += steps
        if self.steps > MAX_STEPS:
            prefix = f"{what}: " if what else ""
            raise ExprProblem(f"{prefix}more than {MAX_STEPS} steps of work in one request (too costly)")
        volume = 0
        for value in operands:  # the hot path of map/select: plain values are weighed without a walk
            kind = type(value)
            if kind is str:
                volume += len(value)
            elif kind in _SCALARS:
                volume += 1
            else:
                volume += self.weigh(value)
        self.volume += volume
        if self.volume > self.max_volume:
            self.spend(0, what)  # raises, with the message

    def compile(self, source: str) -> None:
        """Charge compiling and running one expression, before any of it is done.

        The first time in this request an expression pays for its compile, whether or not the process-wide
        cache already holds it: the charge depends on the request alone, never on what ran before it.
        """
        steps = RUN_STEPS + len(source) // RUN_CHARS_PER_STEP
        if source not in self._compiled:
            steps += COMPILE_STEPS + COMPILE_STEPS_PER_CHAR * len(source)
            self._compiled.add(source)
        self.step("", steps=steps)

    def weigh(self, value: Any) -> int:
        """The size of `value` in characters as `size_of` counts it, up to a little over limits.template.output.

        Measured once per object per request, so a context value handed to many calls is walked once: what the
        walks cost in all is bounded by the context plus what the request built.
        """
        if isinstance(value, str):
            return len(value)
        if not isinstance(value, list | tuple | Mapping | Set):
            return size_of(value, 0)
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        size = size_of(value, self.max_text)
        self._sizes[id(value)] = (value, size)
        return size


def current() -> Budget:
    """The active budget; outside an evaluation, a fresh default one (its caps hold, nothing accumulates)."""
    return _active.get() or Budget()


def size_of(value: Any, limit: int) -> int:
    """Rough size in characters of `value` serialised with indentation; stops counting once past `limit`.

    Iterative (no recursion limit) and bounded by `limit` work, so it is safe on shared-reference structures
    such as `[[1] * 1000] * 1000` whose serialisation would be huge.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            total += len(item) + 2
        elif kind is int:
            total += item.bit_length() // 3 + 1
        elif kind in _SCALARS:
            total += 8
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 4 + 2 * depth
                if total > limit:
                    return total
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple | Set):
            total += 2 + (2 + 2 * depth) * len(item)
            if total > limit:
                return total
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, int):  # an int subclass; bool is in _SCALARS
            total += item.bit_length() // 3 + 1
        else:
            total += 8
        if total > limit:
            return total
    return total
