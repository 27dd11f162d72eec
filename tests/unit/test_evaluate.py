"""Unit tests of task-definition templating (SPEC §3.4) and of the job / each-item contexts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tork_ray.domain.evaluate import each_item_context, evaluate_task, job_context
from tork_ray.errors import ExpressionError
from tork_ray.expr import evaluate_condition, render

CTX = job_context("j-1", "my job", {"img": "alpine", "q": "fast", "n": "3"}, {"tok": "s3"}, {"prev": "42"})

T = "{{ inputs.img }}"  # a template, used in fields that must NOT change


def _kitchen_sink() -> dict[str, Any]:
    return {
        "name": "build {{ inputs.img }}",
        "description": "about {{ inputs.img }}",
        "var": "out_{{ inputs.q }}",
        "image": "{{ inputs.img }}:3",
        "queue": "{{ inputs.q }}",
        "if": "{{ tasks.prev == '42' }}",
        "run": "echo {{ inputs.img }}",
        "cmd": ["echo", "{{ tasks.prev }}", 5],
        "entrypoint": ["sh", T],
        "env": {"A": "{{ secrets.tok }}", "B": "plain", "C": 7, "D": "{{ job.id }}/{{ job.name }}"},
        "files": {"f.txt": T},
        "workdir": T,
        "mounts": [{"type": "volume", "target": T}],
        "networks": [T],
        "timeout": "{{ inputs.n }}s",
        "retry": {"limit": 2},
        "limits": {"cpus": T, "memory": T},
        "registry": {"username": T, "password": T},
        "tags": [T],
        "gpus": T,
        "priority": 3,
        "sidecars": [{"name": T, "image": T}],
        "pre": [{"name": "pre {{ inputs.n }}", "image": T, "env": {"P": T}, "cmd": [T], "run": T, "files": {"x": T}}],
        "post": [{"name": "post", "image": "{{ inputs.img }}", "entrypoint": [T]}],
        "parallel": {
            "tasks": [
                {
                    "name": "p{{ inputs.n }}",
                    "if": T,
                    "run": T,
                    "env": {"E": T},
                    "each": {"list": "{{ sequence(1, 3) }}", "task": {"name": T}},
                    "parallel": {"tasks": [{"name": "nested {{ inputs.q }}", "timeout": T}]},
                },
            ]
        },
        "each": {
            "list": "{{ sequence(1, 3) }}",
            "var": "row",
            "concurrency": 2,
            "task": {"name": "{{ row.value }}", "image": T},
        },
        "subjob": {
            "name": "sub {{ inputs.n }}",
            "description": T,
            "inputs": {"x": "{{ inputs.img }}", "y": 1},
            "secrets": {"s": "{{ secrets.tok }}"},
            "tasks": [{"name": T, "image": T}],
            "output": T,
            "detached": False,
            "webhooks": [
                {
                    "url": "http://h/{{ job.id }}",
                    "headers": {"Auth": "Bearer {{ secrets.tok }}"},
                    "event": "job.StateChange",
                    "if": T,
                }
            ],
        },
    }


def test_kitchen_sink_changes_exactly_the_templated_fields() -> None:
    task = _kitchen_sink()
    expected = _kitchen_sink()
    expected.update(
        name="build alpine",
        var="out_fast",
        image="alpine:3",
        queue="fast",
        cmd=["echo", "42", 5],
        env={"A": "s3", "B": "plain", "C": 7, "D": "j-1/my job"},
    )
    expected["pre"][0].update(name="pre 3", image="alpine", env={"P": "alpine"}, cmd=["alpine"])
    expected["post"][0].update(image="alpine")
    child = expected["parallel"]["tasks"][0]
    child.update(name="p3", env={"E": "alpine"})
    child["parallel"]["tasks"][0]["name"] = "nested fast"
    sub = expected["subjob"]
    sub.update(name="sub 3", inputs={"x": "alpine", "y": 1}, secrets={"s": "s3"})
    sub["webhooks"][0].update(url="http://h/j-1", headers={"Auth": "Bearer s3"})

    result = evaluate_task(task, CTX)

    assert result == expected
    assert task == _kitchen_sink()  # the definition is untouched
    # untemplated fields keep their braces, including `if` (evaluate_condition reads it later)
    assert result["if"] == "{{ tasks.prev == '42' }}"
    assert result["run"] == "echo {{ inputs.img }}"
    assert result["each"] == _kitchen_sink()["each"]
    assert result["subjob"]["tasks"] == [{"name": T, "image": T}]
    assert result["subjob"]["output"] == T
    assert evaluate_condition(result["if"], CTX) is True


def test_result_is_a_deep_copy() -> None:
    task = {"name": "x", "env": {"A": "a"}, "mounts": [{"target": "/t"}], "each": {"task": {"name": "n"}}}
    result = evaluate_task(task, CTX)
    result["env"]["A"] = "changed"
    result["mounts"][0]["target"] = "changed"
    result["each"]["task"]["name"] = "changed"
    assert task == {"name": "x", "env": {"A": "a"}, "mounts": [{"target": "/t"}], "each": {"task": {"name": "n"}}}


def test_idempotent_on_rendered_values() -> None:
    once = evaluate_task(_kitchen_sink(), CTX)
    assert evaluate_task(once, CTX) == once


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"name": "{{ nope }}"}, "name"),
        ({"name": "x", "var": "{{ 1 + }}"}, "var"),
        ({"name": "x", "image": "{{ inputs.n + 1 }}"}, "image"),
        ({"name": "x", "queue": "{{ nope }}"}, "queue"),
        ({"name": "x", "env": {"OK": "1", "FOO": "{{ nope }}"}}, "env.FOO"),
        ({"name": "x", "cmd": ["a", "{{ nope }}"]}, "cmd[1]"),
        ({"name": "x", "pre": [{"name": "a"}, {"name": "b", "image": "{{ nope }}"}]}, "pre[1].image"),
        ({"name": "x", "post": [{"name": "a", "env": {"K": "{{ nope }}"}}]}, "post[0].env.K"),
        ({"name": "x", "parallel": {"tasks": [{"name": "a"}, {"name": "{{ nope }}"}]}}, "parallel.tasks[1].name"),
        (
            {
                "name": "x",
                "parallel": {"tasks": [{"name": "a", "parallel": {"tasks": [{"name": "b", "cmd": ["{{ nope }}"]}]}}]},
            },
            "parallel.tasks[0].parallel.tasks[0].cmd[0]",
        ),
        ({"name": "x", "subjob": {"name": "{{ nope }}"}}, "subjob.name"),
        ({"name": "x", "subjob": {"name": "s", "inputs": {"k": "{{ nope }}"}}}, "subjob.inputs.k"),
        ({"name": "x", "subjob": {"name": "s", "secrets": {"k": "{{ nope }}"}}}, "subjob.secrets.k"),
        ({"name": "x", "subjob": {"name": "s", "webhooks": [{"url": "{{ nope }}"}]}}, "subjob.webhooks[0].url"),
        (
            {"name": "x", "subjob": {"name": "s", "webhooks": [{"url": "u", "headers": {"H": "{{ nope }}"}}]}},
            "subjob.webhooks[0].headers.H",
        ),
    ],
)
def test_errors_name_the_field(task: dict[str, Any], field: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_task(task, CTX)
    message = info.value.message
    assert message.startswith(f"{field}: error ")
    assert "expression" in message


def test_untemplated_fields_never_fail() -> None:
    task = {
        "name": "x",
        "run": "{{ nope }}",
        "if": "{{ nope }}",
        "files": {"f": "{{ 1 + }}"},
        "each": {"list": "{{ nope }}", "task": {"name": "{{ nope }}"}},
        "subjob": {"name": "s", "output": "{{ x }}"},
    }
    assert evaluate_task(task, CTX) == task


def test_non_string_values_and_odd_shapes_are_left_alone() -> None:
    task = {
        "name": None,
        "env": None,
        "cmd": "not a list",
        "pre": ["not a dict", {"name": "{{ inputs.n }}"}],
        "parallel": {"tasks": None},
        "subjob": {"name": "s", "webhooks": [{"headers": None}]},
    }
    result = evaluate_task(task, CTX)
    assert result == {**task, "pre": ["not a dict", {"name": "3"}]}


def test_job_context() -> None:
    assert CTX == {
        "job": {"id": "j-1", "name": "my job"},
        "inputs": {"img": "alpine", "q": "fast", "n": "3"},
        "secrets": {"tok": "s3"},
        "tasks": {"prev": "42"},
    }
    bare = job_context("j-2", "sub", None, None, None, with_job=False)
    assert bare == {"job": {}, "inputs": {}, "secrets": {}, "tasks": {}}
    assert render("[{{ job.id }}][{{ inputs.x }}][{{ secrets.y }}][{{ tasks.z }}]", bare) == "[][][][]"


def test_job_context_copies_its_maps() -> None:
    inputs = {"a": "1"}
    ctx = job_context("j", "n", inputs, {}, {})
    ctx["inputs"]["a"] = "2"
    assert inputs == {"a": "1"}


@pytest.mark.parametrize(
    ("var", "index", "value", "key"),
    [
        (None, 0, 1, "item"),
        ("", 3, "x", "item"),
        ("row", 12, {"a": [1]}, "row"),
    ],
)
def test_each_item_context(var: str | None, index: int, value: Any, key: str) -> None:
    before = copy.deepcopy(CTX)
    ctx = each_item_context(CTX, var, index, value)
    assert ctx[key] == {"index": str(index), "value": value}
    assert {k: v for k, v in ctx.items() if k != key} == CTX
    assert before == CTX


def test_each_child_is_evaluated_with_its_item() -> None:
    parent = _kitchen_sink()["each"]
    contexts = [each_item_context(CTX, parent["var"], i, v) for i, v in enumerate([7, 8])]
    children = [evaluate_task(parent["task"], ctx) for ctx in contexts]
    assert [c["name"] for c in children] == ["7", "8"]
    assert render("{{ row.index }}", each_item_context(CTX, "row", 1, None)) == "1"
