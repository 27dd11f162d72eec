"""The public entry points: render, evaluate, evaluate_expression, evaluate_condition and check_expression.

Each takes the engine's `limits` (LimitsSettings; the defaults when omitted), or a `budget` to share one
request's Budget across several calls (evaluate_task does, for all the fields of a task). Every pass over a
template is linear in its length, and everything an evaluation may build or do is charged to the budget before
it is done (see _budget): a request over a limit fails with an ExpressionError naming the limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError

from tork_ray.errors import ExpressionError
from tork_ray.expr._budget import Budget
from tork_ray.expr._compile import Compiled, compile_source
from tork_ray.expr._sandbox import environment
from tork_ray.expr._scan import first_segment, segments
from tork_ray.expr._values import ExprProblem, materialize, to_text, type_name
from tork_ray.settings import LimitsSettings

_WORD = re.compile(r"[A-Za-z_]\w*")
_MAX_MESSAGE = 300


def _short(message: str) -> str:
    message = " ".join(message[: 4 * _MAX_MESSAGE].split())  # a long source is cut before it is looked at
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _budget_for(limits: LimitsSettings | None, budget: Budget | None, text: str, what: str) -> Budget:
    """The budget of this call, after checking the length of its template against limits.string.length."""
    chosen = budget if budget is not None else Budget(limits)
    cap = chosen.limits.string_length
    if len(text) > cap:
        raise ExpressionError(f"{what} is {len(text)} characters, more than limits.string.length ({cap})")
    return chosen


def _compile(source: str, budget: Budget) -> Compiled:
    try:
        budget.compile(source)  # charged first: a long expression is refused before it is parsed
        return compile_source(source)
    except TemplateSyntaxError as exc:
        reason = exc.message or "syntax error"
    except ExprProblem as exc:
        reason = str(exc)
    except (RecursionError, SyntaxError, MemoryError):  # SyntaxError: Python's parser limits on generated code
        reason = "expression is too deeply nested"
    except Exception:  # never echo an unexpected internal error: it could describe the host
        reason = "invalid expression"
    raise ExpressionError(f"error compiling expression: {_short(source)}: {_short(reason)}")


def _eval(source: str, context: Mapping[str, Any], budget: Budget) -> Any:
    """Evaluate one expression (no braces) to its native value; a missing value becomes ""."""
    compiled = _compile(source, budget)
    unknown = sorted(compiled.names - context.keys() - environment().globals.keys())
    if unknown:  # expr-lang reports unknown names when compiling against the environment: so do we
        raise ExpressionError(f"error compiling expression: {_short(source)}: unknown name {unknown[0]}")
    try:
        with budget.active():
            value = compiled.run(context)
            return "" if isinstance(value, Undefined) else _bounded(materialize(value), budget)
    except ExprProblem as exc:
        reason = str(exc)
    except SecurityError:
        reason = "operation not allowed"
    except TemplateError as exc:
        reason = exc.message or "error"
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        reason = str(exc) or type(exc).__name__
    except RecursionError:
        reason = "value is too deeply nested"
    except MemoryError:
        reason = "out of memory"
    except Exception:  # as in _compile: say that it failed, not what the host looked like
        reason = "evaluation failed"
    raise ExpressionError(f"error evaluating expression: {_short(source)}: {_short(reason)}")


def _bounded(value: Any, budget: Budget) -> Any:
    """The value an expression hands back as plain data (what JSON holds), within the limits even when it comes
    straight from the context: a string of at most limits.template.output characters, a list of at most
    limits.each.items items, anything else no larger than limits.template.output once serialised."""
    if isinstance(value, str):
        if len(value) > budget.max_text:
            raise ExprProblem(f"value is {len(value)} characters, more than limits.template.output ({budget.max_text})")
        return value
    if isinstance(value, list | tuple) and len(value) > budget.max_items:
        raise ExprProblem(f"value has {len(value)} items, more than limits.each.items ({budget.max_items})")
    if budget.weigh(value) > budget.max_text:
        raise ExprProblem(f"value is larger than limits.template.output ({budget.max_text} characters)")
    return _plain(value)


def _plain(value: Any) -> Any:
    """A copy made of str, int, float, bool, None, lists and string-keyed maps; a missing value inside is ""."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Undefined):
        return ""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | Set):
        return [_plain(item) for item in value]
    raise ExprProblem(
        "a function is not a value (call it)" if callable(value) else f"{type_name(value)} is not a value"
    )


def _text_of(source: str, context: Mapping[str, Any], budget: Budget) -> str:
    value = _eval(source, context, budget)
    try:
        with budget.active():
            text = to_text(value)
            budget.spend(len(text), "rendering")
            return text
    except ExprProblem as exc:
        raise ExpressionError(f"error evaluating expression: {_short(source)}: {exc}") from None


def _single_segment(text: str) -> str | None:
    """The expression of a template that is exactly one {{ … }} segment (whitespace around allowed)."""
    found = first_segment(text)
    if found is None or text[: found.start].strip() or text[found.end :].strip():
        return None
    return found.source


def _render(template: str, context: Mapping[str, Any], budget: Budget) -> str:
    parts: list[str] = []
    size = pos = 0
    for segment in segments(template):
        text = _text_of(segment.source, context, budget)
        parts += [template[pos : segment.start], text]
        size += segment.start - pos + len(text)
        pos = segment.end
        _check_output(size, budget)
    if not parts:
        return template
    parts.append(template[pos:])
    _check_output(size + len(template) - pos, budget)
    return "".join(parts)


def _check_output(size: int, budget: Budget) -> None:
    if size > budget.max_text:
        raise ExpressionError(f"template output is more than limits.template.output ({budget.max_text} characters)")


def render(
    template: str, context: Mapping[str, Any], *, limits: LimitsSettings | None = None, budget: Budget | None = None
) -> str:
    """Replace every {{ expr }} segment by its value as text; the text around segments is kept verbatim.

    No braces → returned unchanged; "" → "". Formatting: see `to_text` (true/false, Go-style floats,
    nil and missing → "", lists and maps → compact JSON).
    """
    chosen = _budget_for(limits, budget, template, "template")
    if "{{" not in template:
        return template
    return _render(template, context, chosen)


def evaluate(
    template: str, context: Mapping[str, Any], *, limits: LimitsSettings | None = None, budget: Budget | None = None
) -> Any:
    """The native value of a template that is exactly one segment (a list, int, map...); else render()."""
    chosen = _budget_for(limits, budget, template, "template")
    source = _single_segment(template)
    if source is None:
        return render(template, context, budget=chosen)
    return _eval(source, context, chosen)


def evaluate_expression(
    expr: str, context: Mapping[str, Any], *, limits: LimitsSettings | None = None, budget: Budget | None = None
) -> Any:
    """A bare expression (one surrounding {{ }} is stripped if present) → its native value."""
    chosen = _budget_for(limits, budget, expr, "expression")
    source = _single_segment(expr)
    if source is None:
        source = expr.strip()
    if not source:
        raise ExpressionError("error compiling expression: empty expression")
    return _eval(source, context, chosen)


def evaluate_condition(
    template: str, context: Mapping[str, Any], *, limits: LimitsSettings | None = None, budget: Budget | None = None
) -> bool:
    """A task's `if`: True to run the task, False to skip it (SPEC §3.5 with Decisions Q2).

    The condition is an expression, braces optional (`1 == 2` and `{{ 1 == 2 }}` both skip). The task is
    skipped iff the value is the boolean false or text that trims to exactly "false"; anything else runs it,
    including 0, "", "False", "no" and a missing value (SPEC's truth table, where only "false" skips).
    Two forms keep Tork's text meaning: a template mixing text and segments is rendered and compared as text,
    and a bare single word that is not a name in scope (`no`, `False`, `yes`) is taken as that text.
    """
    chosen = _budget_for(limits, budget, template, "condition")
    text = template.strip()
    if not text:
        return True
    if "{{" in text:
        source = _single_segment(text)
        value = _render(text, context, chosen) if source is None else _eval(source, context, chosen)
    elif _WORD.fullmatch(text) and text not in context and text not in environment().globals:
        value = text
    else:
        value = _eval(text, context, chosen)
    if value is False:
        return False
    return not (isinstance(value, str) and value.strip() == "false")


def check_expression(
    text: str, bare: bool = False, *, limits: LimitsSettings | None = None, budget: Budget | None = None
) -> None:
    """Submit-time syntax check of every {{ … }} segment; names are not known yet, so only syntax is checked.

    With `bare=True` a text without segments is itself one expression (webhook `if`, `each.list`, a task `if`
    without braces); with `bare=False` such a text is plain text and always passes. Compiling is charged to the
    budget as evaluating is, so a document cannot make the check itself expensive.
    """
    chosen = _budget_for(limits, budget, text, "template")
    found = [segment.source for segment in segments(text)]
    if not found and bare and text.strip():
        found = [text.strip()]
    for source in found:
        _compile(source, chosen)
