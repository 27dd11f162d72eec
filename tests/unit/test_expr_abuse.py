"""Hostile templates: every pass is linear, every cost is bounded by limits.*, and only ExpressionError escapes.

The megabyte cases below pass only because the work is linear: the quadratic scan they replace would run for
hours on them (and hit pytest's timeout). No test asserts a duration.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tork_ray.domain.evaluate import evaluate_task
from tork_ray.errors import ExpressionError
from tork_ray.expr import Budget, check_expression, evaluate, evaluate_condition, evaluate_expression, render
from tork_ray.expr._budget import MAX_STEPS
from tork_ray.expr._dialect import translate
from tork_ray.expr._scan import segments
from tork_ray.expr._values import ExprProblem
from tork_ray.settings import LimitsSettings

MB = 1_000_000
# Source-length limit lifted so that megabyte templates reach the scanner instead of being refused at the door.
HUGE = LimitsSettings(string_length=4 * MB)
CTX: dict[str, Any] = {
    "inputs": {"s": "a" * 500_000, "big": list(range(100_000)), "name": "x"},
    "secrets": {},
    "tasks": {},
    "job": {"id": "j", "name": "n"},
}


def _outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The result, or the ExpressionError's message; any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except ExpressionError as exc:
        return exc


def _entry_points(limits: LimitsSettings) -> list[Callable[[str], Any]]:
    return [
        lambda text: render(text, CTX, limits=limits),
        lambda text: evaluate(text, CTX, limits=limits),
        lambda text: evaluate_expression(text, CTX, limits=limits),
        lambda text: evaluate_condition(text, CTX, limits=limits),
        lambda text: check_expression(text, limits=limits),
        lambda text: check_expression(text, bare=True, limits=limits),
        lambda text: evaluate_task({"name": text, "env": {"V": text}, "cmd": [text]}, CTX, limits=limits),
    ]


# --- linear scanning ------------------------------------------------------------------------------------------

_MEGABYTE_SHAPES = {
    "{{ repeated": "{{" * (MB // 2),
    "{ repeated": "{" * MB,
    "}} repeated": "}}" * (MB // 2),
    "}}{{ repeated": "}}{{" * (MB // 4),
    "{{}} repeated": "{{}}" * (MB // 4),
    "unclosed {{": "{{ " + "a" * MB,
    "{{{{ then one }}": "{{" * (MB // 2) + " x }}",
    "one long expression": "{{ " + "1 + " * (MB // 4) + "1 }}",
    "long string literal": "{{ '" + "a" * MB + "' }}",
    "escaped quotes, unterminated": "{{ !'" + "\\'" * (MB // 2) + " }}",
    "nil runs": "{{ " + "nil " * (MB // 4) + "}}",
    "! runs": "{{ " + "!" * MB + "x }}",
    "( runs": "{{ " + "(" * MB + " }}",
    "ternary chain": "{{ " + "a ? b : " * (MB // 8) + "c }}",
    "many segments": "{{ 1 }}" * (MB // 7),
    "many distinct segments": "".join(f"{{{{ {i} }}}}" for i in range(MB // 10)),
    "empty segments": "{{ }}" * (MB // 5),
    "newlines": "{{\n" * (MB // 3),
}


@pytest.mark.parametrize("name", list(_MEGABYTE_SHAPES))
def test_megabyte_templates_are_handled_by_every_entry_point(name: str) -> None:
    text = _MEGABYTE_SHAPES[name]
    for call in _entry_points(HUGE):
        _outcome(call, text)  # a result or an ExpressionError, in linear time


def test_text_without_a_closed_segment_renders_verbatim() -> None:
    for text in ("{{" * (MB // 2), "{" * MB, "}}" * (MB // 2), "{{ " + "a" * MB, "}}{" * (MB // 3)):
        assert render(text, CTX, limits=HUGE) == text


@pytest.mark.parametrize(
    "source",
    [
        "nil " * (MB // 4),
        "!'" + "\\'" * (MB // 2),
        '!"' + "x" * MB,
        "a && b || " * (MB // 10) + "c",
        "x?.y" * (MB // 4),
        "!" * MB + "x",
        "(" * MB,
        "a ? b : " * (MB // 8) + "c",
    ],
    ids=["nil", "escaped-quotes", "unterminated", "and-or", "optional-chain", "not-run", "parens", "ternary"],
)
def test_the_dialect_rewrite_is_linear(source: str) -> None:
    with contextlib.suppress(ExprProblem, RecursionError):  # the engine turns both into a compile error
        assert isinstance(translate(source), str)


_OLD_SEGMENT = re.compile(r"{{\s*(.+?)\s*}}", re.DOTALL)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(["{", "}", " ", "\n", "\t", "a", "'", "\u00a0"]), max_size=40))
def test_the_linear_scan_finds_what_torks_regular_expression_finds(text: str) -> None:
    expected = [(m.start(), m.end(), m.group(1)) for m in _OLD_SEGMENT.finditer(text)]
    assert [(s.start, s.end, s.source) for s in segments(text)] == expected


# --- limits.* ---------------------------------------------------------------------------------------------------


def _message(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ExpressionError) as info:
        fn(*args, **kwargs)
    return info.value.message


def test_template_length_is_limited_by_string_length() -> None:
    small = LimitsSettings(string_length=100)
    text = "{{ 1 }}" + "x" * 100
    for call in _entry_points(small):
        assert "107 characters, more than limits.string.length (100)" in _message(call, text)
    assert render("x" * 100, CTX, limits=small) == "x" * 100
    field = _message(evaluate_task, {"name": "t", "env": {"LONG": "x" * 101}}, CTX, limits=small)
    assert field.startswith("env.LONG: template is 101 characters, more than limits.string.length (100)")


def test_rendered_output_is_limited_by_template_output() -> None:
    small = LimitsSettings(template_output=100)
    assert render("{{ repeat('a', 50) }}{{ repeat('b', 50) }}", CTX, limits=small) == "a" * 50 + "b" * 50
    for template in ("{{ repeat('a', 60) }}{{ repeat('b', 60) }}", "{{ repeat('a', 90) }}" + "x" * 20):
        assert "more than limits.template.output (100 characters)" in _message(render, template, CTX, limits=small)
    assert "more than limits.template.output (100)" in _message(render, "{{ repeat('a', 101) }}", CTX, limits=small)
    # The default: one megabyte (1,048,576 characters).
    assert "limits.template.output" in _message(render, "{{ repeat('a', 600000) }}" * 2, CTX)


@pytest.mark.parametrize("expr", ["sequence(0, 10 ** 18)", "sequence(0 - 10 ** 18, 10 ** 18)", "sequence(0, 100001)"])
def test_sequence_is_refused_before_it_is_built(expr: str) -> None:
    for call in (evaluate_expression, evaluate_condition):
        assert "more than limits.each.items (100000)" in _message(call, expr, CTX)
    assert "limits.each.items" in _message(render, "{{ " + expr + " }}", CTX)


def test_each_items_comes_from_the_limits_given() -> None:
    small = LimitsSettings(each_items=10)
    assert evaluate("{{ sequence(0, 10) }}", CTX, limits=small) == list(range(10))
    message = _message(evaluate, "{{ sequence(0, 11) }}", CTX, limits=small)
    assert message.endswith("sequence: result would have 11 items, more than limits.each.items (10)")
    assert "limits.each.items (10)" in _message(
        evaluate_expression, "split('a,b,c,d,e,f,g,h,i,j,k', ',')", CTX, limits=small
    )


_BOMBS = [
    ("'a' * 10 ** 9", "more than limits.template.output"),
    ("10 ** (10 ** 10)", "more than 4096 bits"),
    ("2 ** 4000 * 2 ** 4000", "more than 4096 bits"),
    ("[" + ", ".join(["2 ** 4000 * 2 ** 90"] * 3000) + "]", "steps of work in one request"),
    ("sequence(0, 100000) | select('in', sequence(0, 100000)) | list", "characters in all"),
    ("sequence(0, 100000)" + " | map('string')" * 50 + " | list", "steps of work in one request"),
    ("[" + ", ".join(["99999 in inputs.big"] * 30) + "]", "characters in all"),
    ("[" + ", ".join(["inputs.big == inputs.big"] * 30) + "]", "characters in all"),
    ("[" + ", ".join(["contains(inputs.s, 'b')"] * 30) + "]", "characters in all"),
    ("[" + ", ".join(["inputs.s[1:]"] * 30) + "]", "characters in all"),
    (" ~ ".join(["inputs.s"] * 300), "more than limits.template.output"),
    ("join(sequence(0, 100000), repeat('x', 100))", "more than limits.template.output"),
    ("replace(replace(replace(inputs.s, 'a', 'aa'), 'a', 'aa'), 'a', 'aa')", "more than limits.template.output"),
    ("[" + ", ".join(["len(inputs.big)"] * 30) + "]", "characters in all"),
    ("inputs.s | list | map('repeat', 100) | list", "limits.each.items"),
    ("[" + ",".join(["1"] * 60_000) + "]", "steps of work in one request"),
    ("1 + " * 1500 + "1", "too deeply nested"),
    (" and ".join(["1 in [1]"] * 300), "too deeply nested"),
]


@pytest.mark.parametrize(("expr", "fragment"), _BOMBS, ids=[f"bomb{i}" for i in range(len(_BOMBS))])
def test_cpu_and_memory_bombs_fail_with_a_clear_message(expr: str, fragment: str) -> None:
    assert fragment in _message(evaluate_expression, expr, CTX, limits=HUGE)


def test_many_segments_are_charged_as_one_request() -> None:
    distinct = "".join(f"{{{{ {i} }}}}" for i in range(5000))
    assert "steps of work in one request" in _message(render, distinct, CTX, limits=HUGE)
    # Rendering a template several times shares nothing: each call has its own budget.
    few = "".join(f"{{{{ {i} }}}}" for i in range(100))
    for _ in range(20):
        render(few, CTX)


def test_a_task_shares_one_budget_across_its_fields() -> None:
    # Each field alone is fine (a megabyte built, then copied into the output); twelve of them are not.
    env = {f"V{i}": "{{ repeat('a', 1000000) }}" for i in range(12)}
    message = _message(evaluate_task, {"name": "t", "env": env}, CTX)
    assert re.match(r"env\.V\d+: .*characters in all \(10 x limits\.template\.output\)$", message), message
    assert len(evaluate_task({"name": "t", "env": {"V": env["V0"]}}, CTX)["env"]["V"]) == MB


def test_a_caller_can_share_a_budget_between_calls() -> None:
    budget = Budget()
    with pytest.raises(ExpressionError, match="characters in all"):
        for _ in range(12):
            render("{{ repeat('a', 1000000) }}", CTX, budget=budget)
    assert budget.volume > budget.max_volume and budget.steps < MAX_STEPS


def test_compile_charges_do_not_depend_on_the_cache() -> None:
    # The same expressions cost the same in a fresh process and a warm one: run twice, the same outcome.
    text = "".join(f"{{{{ {i} + 1 }}}}" for i in range(3000))
    assert _message(render, text, CTX, limits=HUGE) == _message(render, text, CTX, limits=HUGE)


# --- generated templates ----------------------------------------------------------------------------------------

_PIECES = [
    "{{", "}}", "{", "}", " ", "'", '"', "\\", "!", "?", ":", "nil", "&&", "||", "(", ")", "[", "]", "~", "*",
    "**", "+", "10", "9", "'a'", "sequence(", "repeat(", "inputs", "inputs.s", "inputs.big", ".", "__class__",
    "__globals__", "|", "map('string')", "select('in', ", "join(", ",", "range", " in ", "==", "[1:]", "[::-1]",
    "10 ** 10", "* 10 ** 9", "sequence(0, 10 ** 9)", "fromJSON('[1]')", "toJSON(", "split(", "'%s'", "%",
    "lipsum", "cycler", "self", "config", "attr('__class__')", "|list", "|sort", "|unique", "upper", "{%", "%}",
    "{#", "#}", "\n", "item", "job.id", "true", "false", "x",
]  # fmt: skip
_LEAKS = ("<class", "<function", "<built-in", "<module", "<bound", "0x", "jinja2", "site-packages", "traceback")
_FUZZ = LimitsSettings(string_length=2_000, template_output=1_000, each_items=100)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_generated_templates_return_or_raise_expression_error(template: str) -> None:
    for index, call in enumerate(_entry_points(_FUZZ)):
        outcome = _outcome(call, template)
        if isinstance(outcome, ExpressionError):
            text = outcome.message
        else:
            text = repr(outcome)
            _check_sizes(outcome, index)
        for leak in _LEAKS:  # no Python internals, unless the template itself wrote them
            assert leak not in text or leak in template, (leak, text)


def _check_sizes(value: Any, index: int) -> None:
    if index == 0 or isinstance(value, str):
        assert len(value) <= _FUZZ.template_output
    elif isinstance(value, list):
        assert len(value) <= _FUZZ.each_items
    elif isinstance(value, dict) and index == 6:  # evaluate_task: every rendered field within the output limit
        assert all(len(v) <= _FUZZ.template_output for v in [value["name"], value["env"]["V"], *value["cmd"]])
