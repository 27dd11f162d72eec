"""Composite tasks beyond the examples: empty each, per-item conditions, sub-job failure, nesting."""

from __future__ import annotations

from typing import Any

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine


def sh(name: str, run: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, "run": run, **fields}


def run(engine: LiveEngine, doc: dict[str, Any]) -> dict[str, Any]:
    response = engine.http.post("/jobs", json=doc)
    assert response.status_code == 200, response.text
    return engine.wait_for(response.json()["id"])


def test_each_over_an_empty_list_completes_at_once(live_engine: LiveEngine) -> None:
    job = run(
        live_engine,
        {
            "name": "empty each",
            "tasks": [
                {"name": "nothing", "each": {"list": "{{ sequence(3, 3) }}", "task": sh("never", "exit 1")}},
                sh("after", "echo -n after > $TORK_OUTPUT", var="after"),
            ],
        },
    )
    assert job["state"] == "COMPLETED"
    each = job["execution"][0]
    assert each["state"] == "COMPLETED" and each["each"]["size"] == 0
    assert job["context"]["tasks"]["after"] == "after"


def test_each_children_can_skip_by_item(live_engine: LiveEngine) -> None:
    job = run(
        live_engine,
        {
            "name": "odd only",
            "tasks": [
                {
                    "name": "numbers",
                    "each": {
                        "list": "sequence(0, 4)",  # braces are optional for each.list
                        "task": sh("n{{ item.value }}", "true", **{"if": "{{ item.value % 2 == 1 }}"}),
                    },
                }
            ],
        },
    )
    assert job["state"] == "COMPLETED"
    states = {t["name"]: t["state"] for t in job["execution"] if t.get("parentId")}
    assert states == {"n0": "SKIPPED", "n1": "COMPLETED", "n2": "SKIPPED", "n3": "COMPLETED"}


def test_each_list_that_is_not_a_list_fails(live_engine: LiveEngine) -> None:
    job = run(
        live_engine,
        {
            "name": "not a list",
            "tasks": [
                {"name": "bad", "each": {"list": "{{ 42 }}", "task": sh("c", "true")}},
            ],
        },
    )
    assert job["state"] == "FAILED"
    assert job["execution"][0]["error"] == "each.list does not evaluate to a list"


def test_a_failing_subjob_fails_its_parent_task_and_job(live_engine_both: LiveEngine) -> None:
    job = run(
        live_engine_both,
        {
            "name": "parent of a failure",
            "tasks": [
                {"name": "child", "subjob": {"name": "failing child", "tasks": [sh("boom", "echo nope; exit 2")]}},
            ],
        },
    )
    assert job["state"] == "FAILED"
    parent_task = job["execution"][0]
    assert parent_task["state"] == "FAILED"
    assert parent_task["error"].startswith("exit code 2")
    child = live_engine_both.http.get(f"/jobs/{parent_task['subjob']['id']}").json()
    assert child["state"] == "FAILED"


def test_detached_subjobs_do_not_see_the_parents_secrets(live_engine: LiveEngine) -> None:
    job = run(
        live_engine,
        {
            "name": "detach",
            "secrets": {"key": "k3y"},
            "tasks": [
                {
                    "name": "d",
                    "subjob": {
                        "name": "loner",
                        "detached": True,
                        "secrets": {"key": "{{ secrets.key }}"},
                        "tasks": [sh("peek", 'echo -n "[$K]" > $TORK_OUTPUT', env={"K": "{{ secrets.key }}"})],
                    },
                }
            ],
        },
    )
    assert job["state"] == "COMPLETED"
    loner = live_engine.wait_for(job["execution"][0]["subjob"]["id"])
    assert loner["state"] == "COMPLETED"
    assert loner["execution"][0]["result"] == "[]"


def test_parallel_inside_each(live_engine_both: LiveEngine) -> None:
    job = run(
        live_engine_both,
        {
            "name": "nested",
            "tasks": [
                {
                    "name": "outer",
                    "each": {
                        "list": "{{ ['a', 'b'] }}",
                        "task": {
                            "name": "inner {{ item.value }}",
                            "parallel": {
                                "tasks": [
                                    sh("x {{ item.value }}", "echo -n x > $TORK_OUTPUT"),
                                    sh("y {{ item.value }}", "echo -n y > $TORK_OUTPUT"),
                                ]
                            },
                        },
                    },
                }
            ],
        },
    )
    assert job["state"] == "COMPLETED", job
    names = sorted(t["name"] for t in job["execution"])
    assert names == ["inner a", "inner b", "outer", "x a", "x b", "y a", "y b"]
