"""Expression fields (`if`, `output`, webhook `if`, `each.list`) must compile when the job is submitted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tork_ray.errors import ValidationFailed
from tork_ray.spec import parse_job

BROKEN = "1 +"  # a syntax error in any expression language


def doc(**fields: Any) -> bytes:
    return json.dumps({"name": "j", "tasks": [{"name": "t", "image": "alpine"}], **fields}).encode()


def with_task(**fields: Any) -> bytes:
    return json.dumps({"name": "j", "tasks": [{"name": "t", **fields}]}).encode()


def only_problem(body: bytes) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_job(body, "application/json")
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (with_task(**{"if": "{{ " + BROKEN + " }}"}), "tasks[0].if"),
        (with_task(**{"if": BROKEN}), "tasks[0].if"),  # no braces: still an expression (Decisions, Q2)
        (doc(output="{{ " + BROKEN + " }}"), "output"),
        (doc(output="some plain text"), "output"),  # SPEC §3.6: no braces, so the whole text is an expression
        (
            with_task(subjob={"name": "s", "tasks": [{"name": "c"}], "output": "plain text"}),
            "tasks[0].subjob.output",
        ),
        (doc(output="ok {{ tasks.a }} then {{ " + BROKEN + " }}"), "output"),  # every segment is checked
        (doc(webhooks=[{"url": "http://x", "if": BROKEN}]), "webhooks[0].if"),
        (doc(webhooks=[{"url": "http://x", "if": "{{ " + BROKEN + " }}"}]), "webhooks[0].if"),
        (with_task(each={"list": BROKEN, "task": {"name": "c"}}), "tasks[0].each.list"),
        (with_task(each={"list": "{{ " + BROKEN + " }}", "task": {"name": "c"}}), "tasks[0].each.list"),
        (
            with_task(parallel={"tasks": [{"name": "c", "if": "{{ " + BROKEN + " }}"}]}),
            "tasks[0].parallel.tasks[0].if",
        ),
        (with_task(each={"list": "[1]", "task": {"name": "c", "if": BROKEN}}), "tasks[0].each.task.if"),
        (
            with_task(subjob={"name": "s", "tasks": [{"name": "c"}], "output": "{{ " + BROKEN + " }}"}),
            "tasks[0].subjob.output",
        ),
        (
            with_task(subjob={"name": "s", "tasks": [{"name": "c"}], "webhooks": [{"url": "http://h/", "if": BROKEN}]}),
            "tasks[0].subjob.webhooks[0].if",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_broken_expressions_are_rejected(body: bytes, path: str) -> None:
    problem = only_problem(body)
    assert problem.startswith(f"{path} is not a valid expression: ")
    assert len(problem) > len(f"{path} is not a valid expression: ")


@pytest.mark.parametrize(
    "body",
    [
        doc(output="word"),  # SPEC §3.6: one word compiles as an expression (a name), as in Tork
        doc(output="hello {{ tasks.x }} and {{ inputs.y }}"),
        doc(output="{{ tasks.x }}"),
        with_task(**{"if": "{{ inputs.run == 'yes' }}"}),
        with_task(**{"if": "false"}),
        with_task(**{"if": "inputs.n > 2 && !(inputs.m == 1)"}),
        doc(webhooks=[{"url": "http://x", "if": "job.State == 'COMPLETED'"}]),
        with_task(each={"list": "{{ sequence(1, 5) }}", "task": {"name": "c"}}),
        with_task(each={"list": "fromJSON(inputs.items)", "task": {"name": "c"}}),
        with_task(each={"list": "[1, 2, 3]", "task": {"name": "c", "if": "{{ item.value > 1 }}"}}),
    ],
    ids=lambda v: v.decode()[:60],
)
def test_good_expressions_are_accepted(body: bytes) -> None:
    parse_job(body, "application/json")
