"""The public entry points: render, evaluate, evaluate_expression, evaluate_condition and check_expression."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError

from tork_ray.errors import ExpressionError
from tork_ray.expr._sandbox import Compiled, compile_expression, environment
from tork_ray.expr._values import ExprProblem, budget, materialize, to_text

# Tork's segment rule (SPEC §3.1): `{{`, optional spaces, a lazily matched non-empty expression, spaces, `}}`.
# DOTALL so that an expression folded over several YAML lines still counts as one segment.
_SEGMENT = re.compile(r"{{\s*(.+?)\s*}}", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]\w*")
_MAX_MESSAGE = 300


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _compile(source: str) -> Compiled:
    try:
        return compile_expression(source)
    except TemplateSyntaxError as exc:
        reason = exc.message or "syntax error"
    except ExprProblem as exc:
        reason = str(exc)
    except RecursionError:
        reason = "expression is too deeply nested"
    except Exception:  # never echo an unexpected internal error: it could describe the host
        reason = "invalid expression"
    raise ExpressionError(f"error compiling expression: {_short(source)}: {_short(reason)}")


def _eval(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one expression (no braces) to its native value; a missing value becomes ""."""
    compiled = _compile(source)
    unknown = sorted(compiled.names - context.keys() - environment().globals.keys())
    if unknown:  # expr-lang reports unknown names when compiling against the environment: so do we
        raise ExpressionError(f"error compiling expression: {_short(source)}: unknown name {unknown[0]}")
    try:
        with budget():
            value = compiled.run(context)
            return "" if isinstance(value, Undefined) else materialize(value)
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


def _text_of(source: str, context: Mapping[str, Any]) -> str:
    value = _eval(source, context)
    try:
        return to_text(value)
    except ExprProblem as exc:
        raise ExpressionError(f"error evaluating expression: {_short(source)}: {exc}") from None


def _single_segment(text: str) -> str | None:
    """The expression of a template that is exactly one {{ … }} segment (whitespace around allowed)."""
    match = _SEGMENT.search(text)
    if match is None or text[: match.start()].strip() or text[match.end() :].strip():
        return None
    return match.group(1)


def render(template: str, context: Mapping[str, Any]) -> str:
    """Replace every {{ expr }} segment by its value as text; the text around segments is kept verbatim.

    No braces → returned unchanged; "" → "". Formatting: see `to_text` (true/false, Go-style floats,
    nil and missing → "", lists and maps → compact JSON).
    """
    if "{{" not in template:
        return template
    return _SEGMENT.sub(lambda match: _text_of(match.group(1), context), template)


def evaluate(template: str, context: Mapping[str, Any]) -> Any:
    """The native value of a template that is exactly one segment (a list, int, map...); else render()."""
    source = _single_segment(template)
    if source is None:
        return render(template, context)
    return _eval(source, context)


def evaluate_expression(expr: str, context: Mapping[str, Any]) -> Any:
    """A bare expression (one surrounding {{ }} is stripped if present) → its native value."""
    source = _single_segment(expr)
    if source is None:
        source = expr.strip()
    if not source:
        raise ExpressionError("error compiling expression: empty expression")
    return _eval(source, context)


def evaluate_condition(template: str, context: Mapping[str, Any]) -> bool:
    """A task's `if`: True to run the task, False to skip it (SPEC §3.5 with Decisions Q2).

    The condition is an expression, braces optional (`1 == 2` and `{{ 1 == 2 }}` both skip). The task is
    skipped iff the value is the boolean false or text that trims to exactly "false"; anything else runs it,
    including 0, "", "False", "no" and a missing value (SPEC's truth table, where only "false" skips).
    Two forms keep Tork's text meaning: a template mixing text and segments is rendered and compared as text,
    and a bare single word that is not a name in scope (`no`, `False`, `yes`) is taken as that text.
    """
    text = template.strip()
    if not text:
        return True
    if "{{" in text:
        source = _single_segment(text)
        value = render(text, context) if source is None else _eval(source, context)
    elif _WORD.fullmatch(text) and text not in context and text not in environment().globals:
        value = text
    else:
        value = _eval(text, context)
    if value is False:
        return False
    return not (isinstance(value, str) and value.strip() == "false")


def check_expression(text: str, bare: bool = False) -> None:
    """Submit-time syntax check of every {{ … }} segment; names are not known yet, so only syntax is checked.

    With `bare=True` a text without segments is itself one expression (webhook `if`, `each.list`, a task `if`
    without braces); with `bare=False` such a text is plain text and always passes.
    """
    segments = _SEGMENT.findall(text)
    if not segments and bare and text.strip():
        segments = [text.strip()]
    for source in segments:
        _compile(source)
