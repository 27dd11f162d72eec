"""The web UI's pure parts: where a validation error points in the YAML, the search query, the task tree and
its timeline, page links, the last hour's chart arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tork_ray.ui.cluster import chart
from tork_ray.ui.jobs import search_query
from tork_ray.ui.render import page_links
from tork_ray.ui.submit import definition_yaml
from tork_ray.ui.tree import task_rows
from tork_ray.ui.yamlpos import locate

DOC = """name: x
tasks:
  - name: a
    run: echo
  - name: b
    each:
      list: "{{ [1, 2] }}"
      task:
        name: inner
        timeout: soon
"""


def test_a_problem_is_placed_at_the_line_of_the_field_it_names() -> None:
    found = locate(DOC, ["tasks[1].each.task.timeout is not a valid duration", "tasks[1].each.task.image x"])
    assert [p["line"] for p in found] == [10, 8]  # the field, else the deepest part of the path that exists
    assert found[0]["path"] == "tasks[1].each.task.timeout"
    assert locate(DOC, ["tasks[7].name: no"])[0]["line"] == 2  # past the end: the list itself
    assert locate("a: [", ["yaml: line 1, column 5: bad"])[0]["line"] == 1
    assert locate("a: [", ["name is required"])[0]["line"] is None  # unparsable: no place to point at
    assert locate(DOC, ["the job has too many tasks"])[0]["line"] is None


def test_the_search_form_becomes_the_apis_q() -> None:
    assert search_query("deploy web", " a, b ,", "failed") == "deploy web tags:a,b failed"
    assert search_query("", "", "") is None
    assert search_query("x", "", "NOT-A-STATE") == "x"


def _task(task_id: str, position: int, start: int | None, end: int | None, **more: object) -> dict[str, object]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    body: dict[str, object] = {"id": task_id, "position": position, "state": "COMPLETED", **more}
    if start is not None:
        body["startedAt"] = (base + timedelta(seconds=start)).isoformat()
    if end is not None:
        body["completedAt"] = (base + timedelta(seconds=end)).isoformat()
    return body


def test_tasks_form_a_tree_with_bars_on_the_jobs_timeline() -> None:
    job = {
        "state": "COMPLETED",
        "execution": [
            _task("c2", 2, 5, 10, parentId="p"),
            _task("p", 1, 0, 10, parallel={"tasks": []}),
            _task("c1", 1, 0, 5, parentId="p"),
            _task("s", 2, 10, 20, subjob={"id": "child-job"}),
            _task("w", 3, None, None),
        ],
    }
    rows = task_rows(job)
    assert [(r["task"]["id"], r["depth"]) for r in rows] == [("p", 0), ("c1", 1), ("c2", 1), ("s", 0), ("w", 0)]
    assert rows[0]["kind"] == "parallel" and rows[3]["subjob_id"] == "child-job"
    assert rows[2]["bar"] == {"left": 25.0, "width": 25.0}  # 5 s to 10 s of a 20 s job
    assert rows[4]["bar"] is None  # never started


def test_page_links_keep_the_ends_and_the_neighbourhood() -> None:
    assert page_links(1, 1) == [1]
    assert page_links(5, 100) == [1, None, 3, 4, 5, 6, 7, None, 100]
    assert page_links(2, 4) == [1, 2, 3, 4]
    assert page_links(1, 0) == []


def test_a_duplicate_keeps_the_definition_and_flags_redacted_secrets() -> None:
    job = {"id": "j", "state": "FAILED", "name": "n", "secrets": {"k": "[REDACTED]"}, "tasks": [{"name": "t"}]}
    text = definition_yaml(job)
    assert text.startswith("# Values shown as [REDACTED]") and "state" not in text and "name: n" in text


def test_a_chart_scales_its_values_to_the_box() -> None:
    drawn = chart("t", "u", [0.0, 5.0, 10.0])
    assert drawn.peak == 10.0 and drawn.last == 10.0
    assert drawn.points.split() == ["0.0,120.0", "300.0,65.0", "600.0,10.0"]
    assert chart("t", "u", [0.0, 0.0]).points == "0.0,120.0 600.0,120.0"


def test_a_refusal_at_a_line_of_a_very_deep_document_is_located_without_composing_it() -> None:
    # The API refuses it at a line (its depth limit); composing it again here recursed past Python's limit (a 500).
    deep = "a: " + "[" * 5000 + "]" * 5000
    problem = "yaml: line 1, column 1003: document nests deeper than 60 lists and maps"
    assert locate(deep, [problem]) == [{"message": problem, "path": "", "line": 1}]
    assert locate(deep, ["tasks[0].run: required"])[0]["line"] is None  # a field path in it: no line, no error
