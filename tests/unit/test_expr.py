"""Unit tests of the expression engine: rendering, native values, the dialect, functions, `if`, the sandbox."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tork_ray.errors import ExpressionError
from tork_ray.expr import (
    check_expression,
    evaluate,
    evaluate_condition,
    evaluate_expression,
    render,
)
from tork_ray.expr._compile import compile_expression
from tork_ray.expr._dialect import translate
from tork_ray.settings import LimitsSettings

MAX_ITEMS = LimitsSettings().each_items
MAX_TEXT = LimitsSettings().template_output

CTX: dict[str, Any] = {
    "inputs": {
        "name": "world",
        "n": "5",
        "flag": "false",
        "yes": "true",
        "items": "an input named items",
        "csv": "a,b,c",
        "message": "a && b || !c",
    },
    "secrets": {"token": "s3cr3t"},
    "tasks": {"list": '[{"a": 1}, {"a": 2}]', "count": "3\n"},
    "job": {"id": "j-1", "name": "my job"},
    "item": {"index": "2", "value": {"k": "v", "n": 7}},
}


def _err(fn: Any, *args: Any) -> str:
    with pytest.raises(ExpressionError) as info:
        fn(*args)
    return info.value.message


# --- render ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("", ""),
        ("plain text, no braces", "plain text, no braces"),
        ("{{ inputs.name }}", "world"),
        ("hello {{inputs.name}}!", "hello world!"),
        ("{{ inputs.name }}-{{ job.id }}-{{ item.index }}", "world-j-1-2"),
        ("{{ secrets.token }}", "s3cr3t"),
        ("{{ tasks.count }}", "3\n"),
        ("{{ job.name }}", "my job"),
        ("{{ item.value.k }}/{{ item.value['n'] }}", "v/7"),
        ("{{ inputs['name'] }}", "world"),
        ("[{{ inputs.nope }}]", "[]"),
        ("[{{ inputs.nope.deeper.still }}]", "[]"),
        ("[{{ tasks.never_ran }}]", "[]"),
        ("{{ inputs.items }}", "an input named items"),  # a map key wins over dict methods
        ("{{ true }} {{ 1 == 2 }} {{ False }}", "true false false"),
        ("{{ 42 }} {{ -7 }} {{ 2 ** 10 }}", "42 -7 1024"),
        ("{{ 10 / 4 }} {{ 10 / 5 }} {{ 0.1 + 0.2 }}", "2.5 2 0.30000000000000004"),
        ("{{ 123456.0 }} {{ 1000000.0 }} {{ 0.0001 }}", "123456 1e+06 0.0001"),
        ("{{ 0.00001 }} {{ -2.5e-7 }} {{ 1.5e300 * 1e10 }}", "1e-05 -2.5e-07 +Inf"),
        ("[{{ nil }}][{{ none }}]", "[][]"),
        ("{{ [1, 2, 3] }}", "[1,2,3]"),
        ("{{ {'a': 1, 'b': [true, nil]} }}", '{"a":1,"b":[true,null]}'),
        ("{{ 'x' ~ 1 ~ true ~ [1] ~ nil }}", "x1true[1]"),
        ("{% for x in y %}{# not a template #}", "{% for x in y %}{# not a template #}"),
        ("a {{ 'b' }} c {{ 'd' }} e", "a b c d e"),
        ("{{\n  inputs.name\n}}", "world"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, CTX) == expected


def test_render_missing_namespaces_render_empty_when_present_but_empty() -> None:
    assert render("[{{ job.id }}]", {"job": {}}) == "[]"


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("{{ bad_expression }}", "bad_expression"),
        ("{{ item.value }}", "item"),
        ("x {{ inputs.name }} {{ nope(1) }}", "nope"),
        ("{{ range(3) }}", "range"),
        ("{{ dict(a=1) }}", "dict"),
        ("{{ lipsum() }}", "lipsum"),
        ("{{ cycler(1, 2) }}", "cycler"),
        ("{{ joiner() }}", "joiner"),
        ("{{ namespace() }}", "namespace"),
        ("{{ self }}", "self"),
        ("{{ config }}", "config"),
        ("{{ loop }}", "loop"),
    ],
)
def test_unknown_top_level_name_is_an_error(template: str, name: str) -> None:
    ctx = {k: v for k, v in CTX.items() if k != "item"}
    message = _err(render, template, ctx)
    assert message.startswith("error compiling expression: ")
    assert message.endswith(f"unknown name {name}")


def test_custom_each_var_name() -> None:
    ctx = {**CTX, "row": {"index": "0", "value": 5}}
    assert render("{{ row.index }}:{{ row.value + 1 }}", ctx) == "0:6"


def test_error_messages_name_the_expression_and_the_cause() -> None:
    assert _err(render, "{{ 1 + }}", CTX).startswith("error compiling expression: 1 +: ")
    message = _err(render, "{{ inputs.n + 1 }}", CTX)
    assert message == (
        "error evaluating expression: inputs.n + 1: invalid operation: string + int "
        "(use int(...) or float(...) to convert the string)"
    )
    assert _err(render, "{{ 1 / 0 }}", CTX) == "error evaluating expression: 1 / 0: division by zero"
    # no conversion hint when the string is not a number
    assert _err(render, "{{ inputs.name + 1 }}", CTX).endswith("invalid operation: string + int")
    assert _err(render, "{{ inputs.name.upper() }}", CTX).endswith(
        "string has no field upper (methods are not available: write upper(...))"
    )


# --- native values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ sequence(1, 5) }}", [1, 2, 3, 4]),
        ("  {{ sequence(1,5) }}  ", [1, 2, 3, 4]),
        ("{{ fromJSON(tasks.list) }}", [{"a": 1}, {"a": 2}]),
        ("{{ int(inputs.n) + 1 }}", 6),
        ("{{ inputs.n | int + 1 }}", 6),
        ("{{ {'a': 1} }}", {"a": 1}),
        ("{{ inputs.nope }}", ""),
        ("{{ nil }}", None),
        ("{{ 10 / 4 }}", 2.5),
        ("{{ sequence(0, 4) | select('odd') }}", [1, 3]),
        ("{{ 1 }}{{ 2 }}", "12"),
        ("n={{ 1 }}", "n=1"),
        ("no braces", "no braces"),
    ],
)
def test_evaluate_native(template: str, expected: Any) -> None:
    assert evaluate(template, CTX) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sequence(1, 3)", [1, 2]),
        ("{{ sequence(1, 3) }}", [1, 2]),
        ("  {{sequence(1,3)}} ", [1, 2]),
        ("fromJSON(tasks.list)[1].a", 2),
        ("job.id == 'j-1' && inputs.flag != 'true'", True),
        ("split(inputs.csv, ',')", ["a", "b", "c"]),
    ],
)
def test_evaluate_expression(expr: str, expected: Any) -> None:
    assert evaluate_expression(expr, CTX) == expected


def test_evaluate_expression_rejects_empty_and_split_segments() -> None:
    assert _err(evaluate_expression, "  ", CTX).startswith("error compiling expression")
    assert _err(evaluate_expression, "{{ 1 }} {{ 2 }}", CTX).startswith("error compiling expression")


def test_webhook_style_summaries() -> None:
    @dataclasses.dataclass
    class Summary:
        State: str
        Name: str

    ctx = {"job": {"State": "COMPLETED", "Name": "x"}, "task": Summary(State="FAILED", Name="t")}
    assert evaluate_expression("job.State == 'COMPLETED' && task.State == 'FAILED'", ctx) is True
    assert evaluate_expression("{{ task.Name }}", ctx) == "t"
    assert "has no field Nope" in _err(evaluate_expression, "task.Nope", ctx)


# --- the dialect ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a && b", "a  and  b"),
        ("a || b", "a  or  b"),
        ("!a", "(not a)"),
        ("!a == b", "(not a) == b"),
        ("!!a", "(not (not a))"),
        ("!(a && b)", "(not (a  and  b))"),
        ("!inputs.x.y", "(not inputs.x.y)"),
        ("!f(1)[0]", "(not f(1)[0])"),
        ("a != b", "a != b"),
        ("'&& || !' == \"!=\"", "'&& || !' == \"!=\""),
        ("'it\\'s && ok'", "'it\\'s && ok'"),
        ("nil", "none"),
        ("x.nil", "x.nil"),
        ("'nil'", "'nil'"),
        ("a ? b : c", "((b) if (a) else (c))"),
        ("a ? b : c ? d : e", "((b) if (a) else (((d) if (c) else (e))))"),
        ("f(a ? 1 : 2, 3)", "f(((1) if (a) else (2)), 3)"),
        ("{'k': a ? 1 : 2}", "{'k': ((1) if (a) else (2))}"),
        ("x[1:2]", "x[1:2]"),
        ("a?.b", "a.b"),
        ("x | upper", "x | upper"),
        ("1.5 + 2", "1.5 + 2"),
    ],
)
def test_translate(source: str, expected: str) -> None:
    assert translate(source) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("true && false", False),
        ("true || false", True),
        ("!false", True),
        ("!inputs.yes", False),  # a non-empty string is truthy
        ("!(1 == 2) && 2 > 1", True),
        ("inputs.message", "a && b || !c"),
        ("'x && y' ~ \"!z\"", "x && y!z"),
        ("1 != 2", True),
        ("nil == none", True),
        ("inputs.nope == nil && inputs.nope == ''", True),
        ("int(inputs.n) > 3 ? 'big' : 'small'", "big"),
        ("int(inputs.n) > 9 ? 'big' : int(inputs.n) > 4 ? 'mid' : 'small'", "mid"),
        ("'big' if int(inputs.n) > 3 else 'small'", "big"),
        ("inputs?.name", "world"),
        ("inputs.nope | default('d')", "d"),
        ("inputs.nope + 'x'", "x"),
        ("'a' in inputs.csv and 'z' not in inputs.csv", True),
        ("sequence(0, 10)[2:4]", [2, 3]),
    ],
)
def test_dialect_semantics(expr: str, expected: Any) -> None:
    assert evaluate_expression(expr, CTX) == expected


@pytest.mark.parametrize("expr", ["a ?? b", "a ? b", "? a : b", "a ? : b"])
def test_dialect_rejects(expr: str) -> None:
    assert _err(evaluate_expression, expr, {"a": 1, "b": 2}).startswith("error compiling expression")


# --- functions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sequence(1, 5)", [1, 2, 3, 4]),
        ("sequence(2, 2)", []),
        ("sequence(5, 2)", []),
        ("sequence(-2, 1)", [-2, -1, 0]),
        ("fromJSON('{\"a\": [1, 2]}')", {"a": [1, 2]}),
        ("toJSON({'b': 1, 'a': [1]})", '{\n  "a": [\n    1\n  ],\n  "b": 1\n}'),
        ("toJSON('x')", '"x"'),
        ("len('abc') + len([1, 2]) + len({'a': 1}) + len(inputs.nope)", 6),
        ("upper('ab') ~ lower('CD')", "ABcd"),
        ("trim('  x  ') ~ '|' ~ trim('--x--', '-')", "x|x"),
        ("split('a,b,c', ',')", ["a", "b", "c"]),
        ("split('a,b,c', ',', 2)", ["a", "b,c"]),
        ("split('abc', '')", ["a", "b", "c"]),
        ("join(['a', 'b'], '-') ~ join([1, true])", "a-b1true"),
        ("contains('abc', 'b') and contains([1, 2], 2) and contains({'k': 1}, 'k')", True),
        ("contains('abc', 'z')", False),
        ("startsWith('abc', 'ab') and endsWith('abc', 'bc')", True),
        ("hasPrefix('abc', 'ab') and hasSuffix('abc', 'bc') and not hasPrefix('abc', 'c')", True),
        ("replace('a-b-c', '-', '+')", "a+b+c"),
        ("int('42') + int(3.9) + int(' -1 ')", 44),
        ("float('2.5') + float(1)", 3.5),
        ("string(1) ~ string(true) ~ string(2.0) ~ string(nil) ~ string([1])", "1true2[1]"),
        ("keys({'a': 1, 'b': 2})", ["a", "b"]),
        ("values({'a': 1, 'b': 2})", [1, 2]),
        ("abs(-3) + abs(2.5)", 5.5),
        ("min(3, 1, 2) + max([3, 1, 2]) + sum([1, 2, 3])", 10),
        ("first([1, 2]) ~ last([1, 2]) ~ first([])", "12"),
        ("toBase64('hello')", "aGVsbG8="),
        ("fromBase64('aGVsbG8=')", "hello"),
        ("repeat('ab', 3)", "ababab"),
        ("indexOf('abcd', 'cd') + indexOf([5, 6], 6) + indexOf('a', 'z')", 2),
        ("ceil(1.2) + floor(1.8) + round(2.5) + round(-2.5)", 3.0),
        ("'ab' | upper", "AB"),
        ("[3, 1, 2] | sort | join(',')", "1,2,3"),
        ("'{\"a\": 1}' | fromJSON", {"a": 1}),
        ("[1, 2] | toJSON | fromJSON", [1, 2]),
        ("sequence(0, 3) | map('string') | join(',')", "0,1,2"),
        ("fromJSON(tasks.list) | map(attribute='a') | list", [1, 2]),
        ("inputs.nope | length", 0),
    ],
)
def test_functions(expr: str, expected: Any) -> None:
    assert evaluate_expression(expr, CTX) == expected


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("sequence('1', 3)", "sequence(): start must be an integer, got string (use int(...) to convert)"),
        ("sequence(1.5, 3)", "start must be an integer"),
        ("sequence(1)", "missing 1 required positional argument"),
        ("randomInt(nil)", "randomInt(): the bound must be an integer, got nil"),
        ("randomInt('5')", "must be an integer, got string"),
        ("randomInt(2.5)", "must be an integer, got float"),
        ("randomInt(1, 2)", "expected at most 1 argument, got 2"),
        ("randomInt(0)", "the bound must be positive"),
        ("fromJSON('{')", "fromJSON(): invalid JSON"),
        ("fromJSON(1)", "expected a string, got int"),
        ("int('abc')", "int(): the string is not an integer"),
        ("int(nil)", "cannot convert nil to int"),
        ("float('x')", "float(): the string is not a number"),
        ("len(1)", "len(): invalid argument of type int"),
        ("upper(1)", "upper(): expected a string, got int"),
        ("keys([1])", "keys(): expected a map, got array"),
        ("fromBase64('!!')", "not valid base64"),
        ("max()", "max(): no values"),
        ("sum(['a'])", "sum(): expected a number, got string"),
        ("repeat('a', -1)", "negative count"),
        ("'a' - 1", "invalid operation: string - int"),
        ("[1] + 'a'", "invalid operation: array + string"),
        ("true + 1", "invalid operation: bool + int"),
        ("inputs.nope < 3", "nope is missing"),
        ("(-8) ** 0.5", "not a real number"),
    ],
)
def test_function_errors(expr: str, fragment: str) -> None:
    message = _err(evaluate_expression, expr, CTX)
    assert message.startswith(f"error evaluating expression: {expr}: ")
    assert fragment in message


def test_random_int() -> None:
    values = {evaluate_expression("randomInt(3)", {}) for _ in range(200)}
    assert values == {0, 1, 2}
    assert all(evaluate_expression("randomInt()", {}) >= 0 for _ in range(20))


def test_context_names_shadow_functions() -> None:
    assert render("{{ len }}", {"len": "mine"}) == "mine"


# --- the task `if` (SPEC §3.5, Decisions Q2) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "runs"),
    [
        ("false", False),
        ("  false\n", False),
        ("{{ false }}", False),
        ("{{ 1 == 2 }}", False),
        ("{{ inputs.flag }}", False),  # the string "false"
        ("1 == 2", False),  # Q2: evaluated without braces too
        ("inputs.flag != 'false'", False),
        ("!true", False),
        ("true && false", False),
        ("{{ False }}", False),  # Jinja's False is the boolean false
        ("{{ 'false' }}", False),
        ("{{ ' false ' }}", False),
        ("x {{ 'y' }}", True),
        ("{{ 'fal' }}{{ 'se' }}", False),  # several segments: rendered, then compared as text
        ("", True),
        ("true", True),
        ("{{ true }}", True),
        ("{{ 1 == 1 }}", True),
        ("{{ inputs.yes }}", True),
        ("False", True),  # a bare word not in scope is text, and only "false" skips
        ("no", True),
        ("FALSE", True),
        ("0", True),
        ("{{ 0 }}", True),
        ('""', True),
        ("{{ '' }}", True),
        ("{{ inputs.nope }}", True),
        ("{{ nil }}", True),
        ("{{ [] }}", True),
    ],
)
def test_condition_truth_table(condition: str, runs: bool) -> None:
    assert evaluate_condition(condition, CTX) is runs


def test_condition_errors_surface() -> None:
    assert "unknown name nope" in _err(evaluate_condition, "{{ nope }}", CTX)
    assert "unknown name nope" in _err(evaluate_condition, "nope == 1", CTX)
    assert _err(evaluate_condition, "1 ==", CTX).startswith("error compiling expression")


def test_condition_with_each_item() -> None:
    ctx = {**CTX, "item": {"index": "0", "value": 3}}
    assert evaluate_condition("item.value > 2", ctx) is True
    assert evaluate_condition("{{ item.value > 5 }}", ctx) is False


# --- check_expression (submit time) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bare"),
    [
        ("", False),
        ("plain text with spaces", False),
        ("{{ inputs.x }} and {{ tasks.y | upper }}", False),
        ("{{ undefined_names_are_fine_at_submit_time }}", False),
        ("inputs.x == 'y' && !tasks.z", True),
        ("{{ sequence(1, 3) }}", True),
        ("no", True),
        ("a ? b : c", True),
    ],
)
def test_check_expression_accepts(text: str, bare: bool) -> None:
    check_expression(text, bare=bare)


@pytest.mark.parametrize(
    ("text", "bare"),
    [
        ("{{ 1 + }}", False),
        ("{{ ok }} then {{ (bad }}", False),  # every segment is checked, not only the first
        ("plain text with spaces", True),
        ("inputs.x ==", True),
        ("a ?? b", True),
        ("{{ 'x' | no_such_filter }}", False),
    ],
)
def test_check_expression_rejects(text: str, bare: bool) -> None:
    with pytest.raises(ExpressionError) as info:
        check_expression(text, bare=bare)
    assert info.value.message.startswith("error compiling expression: ")


def test_compiled_expressions_are_cached() -> None:
    compile_expression.cache_clear()
    for _ in range(3):
        render("{{ inputs.name ~ '!' }}", CTX)
    info = compile_expression.cache_info()
    assert (info.misses, info.hits) == (1, 2)


# --- the sandbox ----------------------------------------------------------------------------------------------

_ESCAPES = [
    "''.__class__",
    "''.__class__.__mro__[1].__subclasses__()",
    "toJSON.__globals__",
    "sequence.__code__",
    "inputs.__class__.__init__.__globals__",
    "cycler.__init__.__globals__.os",
    "lipsum.__globals__",
    "self._TemplateReference__context",
    "namespace.__init__",
    "config.items()",
    "range(10**9)",
    "'{0.__class__}'.format(1)",
    "'a'.ljust(10**9)",
    "inputs.name.upper()",
    "''.join",
    "(1).__class__.__bases__",
    "[].__class__",
    "fromJSON('[]').__class__",
    "item['__class__'].mro()",
    "inputs|attr('__class__')",
    "'%s' % inputs",
    "(sequence|string)[0:3]",
    "sequence",
    "toJSON(upper)",
    "inputs.__class__",
]


@pytest.mark.parametrize("expr", _ESCAPES)
def test_sandbox_escapes_fail_without_leaking(expr: str) -> None:
    ctx = {**CTX, "item": {"index": "0", "value": 1}}
    message = _err(render, "{{ " + expr + " }}", ctx)
    assert message.startswith(("error compiling expression: ", "error evaluating expression: "))
    cause = message.split(f"{expr}: ", 1)[1]
    for leak in ("0x", "/", "<", "jinja", "python", "traceback", "builtins", "site-packages"):
        assert leak not in cause.lower(), (leak, message)


_ITEMS_CAP = f"more than limits.each.items ({MAX_ITEMS})"
_TEXT_CAP = f"more than limits.template.output ({MAX_TEXT})"
_TOTAL_CAP = f"handles more than {10 * MAX_TEXT} characters in all"
_CAPS = [
    ("sequence(0, 100001)", _ITEMS_CAP),
    ("sequence(0, 10 ** 15)", "sequence: result would have 1000000000000000 items, " + _ITEMS_CAP),
    (f"repeat('a', {MAX_TEXT + 1})", _TEXT_CAP),
    ("'a' * 10**9", _TEXT_CAP),
    ("10**9 * 'a'", _TEXT_CAP),
    ("[1] * 10**6", _ITEMS_CAP),
    ("[repeat('a', 100000)] * 100", f"larger than limits.template.output ({MAX_TEXT} characters)"),
    ("[[1] * 1000] * 1000", f"larger than limits.template.output ({MAX_TEXT} characters)"),
    ("10 ** (10 ** 10)", "more than 4096 bits"),
    ("2 ** 4000 * 2 ** 4000", "'*': result would have more than 4096 bits"),
    ("join(sequence(0, 100000), repeat('x', 100000))", _TEXT_CAP),
    ("replace(repeat('a', 100000), 'a', repeat('b', 100))", _TEXT_CAP),
    ("split(repeat('a', 200000), '')", _ITEMS_CAP),
    (f"repeat('a', {MAX_TEXT - 1}) + 'bb'", _TEXT_CAP),
    ("sequence(0, 100000) + [1]", _ITEMS_CAP),
    ("'%0999999999d' % 1", "invalid operation: string % int"),
    ("'x' | center(10**9)", "No filter named 'center'"),
    ("'x' | indent(10**9)", "No filter named 'indent'"),
    ("[1] | batch(10**9, 0)", "No filter named 'batch'"),
    ("toBase64(repeat('a', 1000000))", _TEXT_CAP),
    ("split(repeat('a', 100000), '') | map('repeat', 1000000) | list", _TOTAL_CAP),
    ("split(repeat('a', 20), '') | map('repeat', 1000000)", _TOTAL_CAP),
    ("[" + ", ".join(["repeat('a', 999999)"] * 11) + "]", _TOTAL_CAP),
]


@pytest.mark.parametrize(("expr", "fragment"), _CAPS)
def test_resource_caps(expr: str, fragment: str) -> None:
    assert fragment in _err(evaluate_expression, expr, CTX)


def test_the_total_budget_is_per_call() -> None:
    for _ in range(15):  # 15 x 1 MB over separate calls is fine; in one it is not
        evaluate_expression("repeat('a', 1000000)", {})


def test_caps_leave_room_for_real_work() -> None:
    assert len(evaluate_expression("sequence(0, 100000)", {})) == MAX_ITEMS
    assert len(evaluate_expression("repeat('a', 1000000)", {})) == 1_000_000
    assert json.loads(render("{{ [sequence(0, 1000)] * 50 }}", {}))[49][999] == 999
    assert evaluate_expression("2 ** 4000 > 0", {}) is True


def test_context_is_not_modified() -> None:
    ctx = {"inputs": {"a": [1]}}
    render("{{ inputs.a + [2] }} {{ inputs.a * 2 }}", ctx)
    assert ctx == {"inputs": {"a": [1]}}
