"""Tork's expression language on Jinja2, in an immutable sandbox (SPEC §3): the API the engine codes against.

Dialect, in one place (documented here because users meet it in error messages):

* Segments are `{{ expr }}`; text outside them is kept verbatim. There are no `{% %}` blocks: a `{%` is text.
* Names: `inputs`, `secrets`, `tasks`, `job`, `item` (or the each `var`), `task` (webhooks), given by the
  caller. A missing key of a map is "" (and equals "" and nil); an unknown top-level name is an error
  (`error compiling expression: x: unknown name x`).
* expr-lang spellings accepted: `&&`, `||`, `!` (as `and`, `or`, `not`, never inside string literals),
  `nil` (as `none`), `a ? b : c` (as `b if a else c`), `a?.b` (as `a.b`, which is already nil-safe for maps).
  Not accepted: `??` (use `x | default(y)`), ranges `1..3` (use `sequence(1, 4)`), bare map keys `{a: 1}`
  (quote them: `{'a': 1}`), `matches`, predicates with `#`.
* Functions, callable as `f(x)` and as filters `x | f`: sequence, randomInt (call only), fromJSON, toJSON,
  len, upper, lower, trim, split, join, contains, startsWith, endsWith, hasPrefix, hasSuffix, replace, int,
  float, string, keys, values, abs, min, max, sum, first, last, toBase64, fromBase64, repeat, indexOf, ceil,
  floor, round; plus Jinja's harmless filters (default, length, map, select, sort, ...).
* Methods are not reachable (`'a'.upper()` fails: write `upper('a')`); `_` attributes never.
* Rendering: true/false, ints, floats as Go's %v (2.5, 10/5 → 2, 1e+06), nil and missing → "", lists and
  maps → compact JSON. A task `if` skips only on false / "false" (see evaluate_condition).
* Values built by one expression are capped: 100,000 items and 1,000,000 characters per value, 10,000,000
  characters in all per evaluation, integers of 4096 bits.
"""

from tork_ray.expr._engine import check_expression, evaluate, evaluate_condition, evaluate_expression, render
from tork_ray.expr._values import MAX_ITEMS, MAX_TEXT, to_text

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "check_expression",
    "evaluate",
    "evaluate_condition",
    "evaluate_expression",
    "render",
    "to_text",
]
