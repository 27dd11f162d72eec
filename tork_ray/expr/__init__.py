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
* Costs are bounded by the engine's limits.* (every entry point takes `limits=`, or a shared `budget=`): a
  template of at most limits.string.length characters renders to at most limits.template.output; a value is at
  most limits.template.output characters or limits.each.items items (sequence() included, refused before it
  is built); integers have at most 4096 bits; one request handles at most 10 x limits.template.output
  characters in all and at most 100,000 steps of work (see _budget). Every pass over a template is linear.
"""

from tork_ray.expr._budget import Budget
from tork_ray.expr._engine import check_expression, evaluate, evaluate_condition, evaluate_expression, render
from tork_ray.expr._values import to_text

__all__ = [
    "Budget",
    "check_expression",
    "evaluate",
    "evaluate_condition",
    "evaluate_expression",
    "render",
    "to_text",
]
