"""Submit-time safety rules: `files` names stay inside the task's directory, and the limits.* bounds (tasks,
nesting, list entries, string lengths) answer a 400 naming the limit and the field, deep documents included."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tork_ray.errors import BadRequest, ValidationFailed
from tork_ray.settings import LimitsSettings
from tork_ray.spec import JobInput, parse_job, parse_scheduled_job, validate_job
from tork_ray.spec.parse import loose_document
from tork_ray.spec.paths import file_name_parts, file_name_problem

Doc = dict[str, Any]
HOSTILE_NAMES = ["/tmp/x", "../../../../tmp/y", "", "a\x00b", "ok/../../up", "/", "dir/", "a/.", ".."]
GOOD_NAMES = ["a.txt", "dir/sub/f.txt", "./a", ".hidden", "a..b", "a//b", "名前.txt"]


def with_task(**fields: Any) -> Doc:
    return {"name": "j", "tasks": [{"name": "t", **fields}]}


def rejected(doc: Doc | bytes, content_type: str = "application/json", **kwargs: Any) -> BadRequest:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(BadRequest) as info:
        parse_job(body, content_type, **kwargs)
    return info.value


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_file_name_is_refused_naming_files_and_the_name(name: str) -> None:
    err = rejected(with_task(files={name: "x", "fine.txt": "y"}))
    assert isinstance(err, ValidationFailed)
    shown = json.dumps(name, ensure_ascii=False)
    assert any(p.startswith("tasks[0].files: file name ") and shown in p for p in err.problems), err.problems
    assert "fine.txt" not in err.message


def test_every_bad_name_is_reported() -> None:
    err = rejected(with_task(files={"/tmp/x": "a", "../../../../tmp/y": "b"}))
    assert err.message.splitlines() == [
        'tasks[0].files: file name "/tmp/x" is an absolute path (names are relative to the task\'s directory)',
        'tasks[0].files: file name "../../../../tmp/y" has a .. segment (names must stay inside the task\'s directory)',
    ]


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (with_task(pre=[{"name": "p", "files": {"/etc/x": "a"}}]), "tasks[0].pre[0].files"),
        (with_task(post=[{"name": "p", "files": {"/etc/x": "a"}}]), "tasks[0].post[0].files"),
        (with_task(sidecars=[{"name": "s", "files": {"/etc/x": "a"}}]), "tasks[0].sidecars[0].files"),
        (with_task(parallel={"tasks": [{"name": "c", "files": {"/etc/x": "a"}}]}), "tasks[0].parallel.tasks[0].files"),
        (with_task(each={"list": "[1]", "task": {"name": "c", "files": {"/etc/x": "a"}}}), "tasks[0].each.task.files"),
        # Sub-job tasks are not validated rule by rule (as in Tork), but their file names are.
        (
            with_task(subjob={"name": "s", "tasks": [{"name": "c", "files": {"/etc/x": "a"}}]}),
            "tasks[0].subjob.tasks[0].files",
        ),
    ],
)
def test_file_names_are_checked_wherever_files_appear(doc: Doc, path: str) -> None:
    assert f'{path}: file name "/etc/x" is an absolute path' in rejected(doc).message


def test_scheduled_jobs_get_the_same_rule() -> None:
    doc = {**with_task(files={"../x": "a"}), "schedule": {"cron": "* * * * *"}}
    with pytest.raises(ValidationFailed) as info:
        parse_scheduled_job(json.dumps(doc).encode(), "application/json")
    assert 'tasks[0].files: file name "../x" has a .. segment' in info.value.message


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_relative_names_inside_the_directory_are_accepted(name: str) -> None:
    job = parse_job(json.dumps(with_task(files={name: "x"})).encode(), "application/json")
    assert job.tasks[0].files == {name: "x"}
    assert file_name_problem(name) is None
    assert ".." not in file_name_parts(name) and "" not in file_name_parts(name)


def test_workdir_and_mount_targets_are_container_paths() -> None:
    # Absolute on purpose: Docker resolves them inside the container (SPEC §2.1), not on the host.
    doc = with_task(image="alpine", workdir="/app/src", mounts=[{"type": "volume", "target": "/data"}])
    assert parse_job(json.dumps(doc).encode(), "application/json").tasks[0].workdir == "/app/src"


# --- limits --------------------------------------------------------------------------------------------------

SMALL = LimitsSettings(tasks=5, depth=2, list_length=4, string_length=10)


def nested(levels: int, kind: str = "parallel") -> Doc:
    task: Doc = {"name": "leaf"}
    for i in range(levels):
        if kind == "parallel":
            task = {"name": f"p{i}", "parallel": {"tasks": [task]}}
        elif kind == "each":
            task = {"name": f"e{i}", "each": {"list": "[1]", "task": task}}
        else:
            task = {"name": f"s{i}", "subjob": {"name": "s", "tasks": [task]}}
    return {"name": "j", "tasks": [task]}


@pytest.mark.parametrize("kind", ["parallel", "each", "subjob"])
def test_nesting_up_to_the_limit_passes_and_one_more_names_the_task(kind: str) -> None:
    parse_job(json.dumps(nested(2, kind)).encode(), "application/json", limits=SMALL)
    err = rejected(nested(3, kind), limits=SMALL)
    child = {"parallel": ".parallel.tasks[0]", "each": ".each.task", "subjob": ".subjob.tasks[0]"}[kind]
    assert err.message == f"tasks[0]{child * 3} is nested 3 levels deep in parallel/each/subjob: limits.depth is 2"


def test_the_default_depth_is_enforced_with_the_field_path() -> None:
    err = rejected(nested(17))
    assert err.message.startswith("tasks[0].parallel.tasks[0]") and "limits.depth is 16" in err.message


def test_tasks_are_counted_nested_ones_included() -> None:
    doc = {"name": "j", "tasks": [{"name": "a"}, {"name": "p", "parallel": {"tasks": [{"name": "b"}, {"name": "c"}]}}]}
    parse_job(json.dumps(doc).encode(), "application/json", limits=SMALL)  # 4 tasks
    doc["tasks"].append({"name": "e", "each": {"list": "[1]", "task": {"name": "f"}}})  # 6 tasks
    err = rejected(doc, limits=SMALL)
    assert err.message == "tasks[2].each.task is one task too many: limits.tasks is 5 per document"


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        (with_task(tags=["a"] * 5), "tasks[0].tags has 5 entries: limits.list.length is 4"),
        (with_task(env={str(i): "v" for i in range(5)}), "tasks[0].env has 5 entries: limits.list.length is 4"),
        ({"name": "j", "tasks": [{"name": "t"}] * 5}, "tasks has 5 entries: limits.list.length is 4"),
        (with_task(env={"K": "x" * 11}), "tasks[0].env.K is 11 characters long: limits.string.length is 10"),
        (with_task(env={"K" * 11: "x"}), 'tasks[0].env (key "KKKKKKKKKKK") is 11 characters long'),
        ({"name": "x" * 11, "tasks": [{"name": "t"}]}, "name is 11 characters long: limits.string.length is 10"),
    ],
)
def test_lists_maps_and_strings_over_the_limit(doc: Doc, line: str) -> None:
    assert line in rejected(doc, limits=SMALL).message


def test_validate_job_takes_the_limits_keyword() -> None:
    job = JobInput.model_validate(nested(3))
    assert validate_job(job) == []  # defaults: LimitsSettings()
    assert validate_job(job, limits=SMALL) == [
        "tasks[0].parallel.tasks[0].parallel.tasks[0].parallel.tasks[0] is nested 3 levels deep in "
        "parallel/each/subjob: limits.depth is 2"
    ]


def deep_json(levels: int) -> bytes:
    return ('{"name": "j", "tasks": [{"name": "t", "env": {"A": ' + "[" * levels + "]" * levels + "}}]}").encode()


@pytest.mark.parametrize("levels", [100, 10_000, 100_000])
def test_deep_json_is_a_400_naming_the_limit_and_where(levels: int) -> None:
    err = rejected(deep_json(levels))
    assert not isinstance(err, ValidationFailed)
    assert err.message.startswith("tasks[0].env.A[0][0]") and "limits.depth is 16" in err.message


@pytest.mark.parametrize(
    ("body", "where"),
    [
        # Flow style on one line: libyaml stops at 1,000 levels before any event; its position is named.
        ("name: j\ntasks: " + "[" * 10_000 + "]" * 10_000, "yaml: line 2, column "),
        ("name: j\ntasks: " + "[" * 100_000, "yaml: line 2, column "),
        ("name: j\ntasks: " + "[\n" * 100, "tasks[0][0]"),  # a line each: the events name the path
        ("name: j\ntasks:\n" + "".join(" " * i + "- \n" for i in range(0, 400)), "tasks[0][0]"),
        ("name: j\ntasks:\n" + "".join(" " * i + "k:\n" for i in range(2, 400)), "tasks.k.k"),
    ],
    ids=["flow", "flow-unclosed", "flow-lines", "block-lists", "block-maps"],
)
def test_deep_yaml_is_a_400_naming_the_limit(body: str, where: str) -> None:
    err = rejected(body.encode(), "text/yaml")
    assert err.message.startswith(where) and "limits.depth is 16" in err.message, err.message


def test_a_valid_document_near_every_limit_is_accepted() -> None:
    doc = nested(16)
    doc["tasks"][0]["description"] = "x" * 65_536
    doc["tags"] = ["t"] * 10_000
    assert parse_job(yaml.safe_dump(doc).encode(), "text/yaml").tags == ["t"] * 10_000


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b'{"name": "j\\u0000", "tasks": [{"name": "t"}]}', "name must not contain a NUL character"),
        (b'{"name": "j", "tasks": [{"name": "t", "env": {"A": "\\ud800"}}]}', "tasks[0].env.A contains a lone"),
        (b'{"name": "j", "tasks": [{"name": "t", "env": {"\\udfff": "x"}}]}', 'tasks[0].env (key "\\udfff") contains'),
        (b'{"name": "j", "tasks": [{"name": "t", "priority": ' + b"9" * 5000 + b"}]}", "json: Exceeds the limit"),
    ],
)
def test_characters_and_numbers_no_store_can_hold(body: bytes, line: str) -> None:
    assert line in rejected(body).message


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_yaml_non_finite_numbers_are_refused(value: str) -> None:
    body = f"name: j\ntasks:\n  - name: t\n    retry: {{limit: 1, scalingFactor: {value}}}\n"
    assert "tasks[0].retry.scalingFactor must be a finite number" in rejected(body.encode(), "text/yaml").message


@pytest.mark.parametrize(
    "body",
    [
        b"name: a\x00b\ntasks: []\n",  # the YAML reader refuses control characters before any parsing
        b"name: j\ntasks:\n  - name: t\n    priority: " + b"9" * 5000 + b"\n",
    ],
)
def test_yaml_the_reader_or_a_constructor_refuses_is_a_400(body: bytes) -> None:
    assert rejected(body, "text/yaml").message.startswith("yaml:")


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "j", "tasks": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b"name: j\ntasks: " + b"{a: " * 100_000,
        b'{"priority": ' + b"9" * 5000 + b"}",
        b"a: &a [1]\nb: *a\n",
        b"\xff\xfe",
    ],
)
def test_loose_document_never_raises(body: bytes) -> None:
    assert loose_document(body) is None


def test_loose_document_reads_what_it_can() -> None:
    assert loose_document(b'{"secrets": {"k": "v"}, "tasks": 1}') == {"secrets": {"k": "v"}, "tasks": 1}
    assert loose_document(b"secrets: {k: v}\nunknown: 1\n") == {"secrets": {"k": "v"}, "unknown": "1"}
