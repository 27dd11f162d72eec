"""Parsing: content types, strict YAML/JSON decoding, scalar coercion and readable error paths."""

from __future__ import annotations

import json

import pytest

from tork_ray.errors import BadRequest, ValidationFailed
from tork_ray.spec import (
    JOB_CONTENT_TYPES,
    JobInput,
    TaskInput,
    parse_job,
    parse_scheduled_job,
    to_dict,
)

SEED = b"""\
name: hello job
tasks:
  - name: say hello
    var: task1
    image: ubuntu:mantic
    run: |
      echo -n hello world > $TORK_OUTPUT
  - name: say goodbye
    image: ubuntu:mantic
    run: |
      echo -n bye world
"""
MINIMAL_JSON = b'{"name": "j", "tasks": [{"name": "t", "image": "alpine"}]}'


def bad_request(body: bytes | str, content_type: str | None = "text/yaml") -> BadRequest:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(BadRequest) as info:
        parse_job(raw, content_type)
    return info.value


def test_seed_example_parses() -> None:
    job = parse_job(SEED, "text/yaml")
    assert job.name == "hello job"
    assert job.tasks is not None and [t.name for t in job.tasks] == ["say hello", "say goodbye"]
    assert job.tasks[0].var == "task1"
    assert job.tasks[0].run == "echo -n hello world > $TORK_OUTPUT\n"


@pytest.mark.parametrize("content_type", JOB_CONTENT_TYPES)
def test_every_job_content_type_is_accepted(content_type: str) -> None:
    body = MINIMAL_JSON if content_type == "application/json" else SEED
    assert isinstance(parse_job(body, content_type), JobInput)


def test_json_is_valid_yaml_too() -> None:
    assert parse_job(MINIMAL_JSON, "text/yaml").name == "j"


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "missing content type"),
        ("", "missing content type"),
        ("application/json; charset=utf-8", "unknown content type: application/json; charset=utf-8"),
        ("text/plain", "unknown content type: text/plain"),
        ("APPLICATION/JSON", "unknown content type: APPLICATION/JSON"),
    ],
)
def test_job_content_type_errors(content_type: str | None, message: str) -> None:
    err = bad_request(MINIMAL_JSON, content_type)
    assert not isinstance(err, ValidationFailed)
    assert err.message == message


def test_scheduled_job_content_types() -> None:
    body = b'{"name": "j", "tasks": [{"name": "t"}], "schedule": {"cron": "@daily"}}'
    assert parse_scheduled_job(body, "application/json").schedule.cron == "@daily"
    assert parse_scheduled_job(body, "text/yaml").name == "j"
    for content_type, message in [
        ("application/x-yaml", "unknown content type: application/x-yaml"),
        (None, "unknown content type: "),
        ("text/csv", "unknown content type: text/csv"),
    ]:
        with pytest.raises(BadRequest) as info:
            parse_scheduled_job(body, content_type)
        assert info.value.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("base: &b {name: x}\nname: j\n", "yaml: line 1, column 7: anchors are not allowed"),
        ("name: j\ntasks:\n  - &t {name: x}\n  - *t\n", "yaml: line 3, column 5: anchors are not allowed"),
        ("name: *nope\n", "yaml: line 1, column 7: aliases are not allowed"),
        ("name: j\ntasks:\n  - <<: {name: x}\n", "yaml: line 3, column 5: merge keys (<<) are not allowed"),
        ("name: a\nname: b\n", 'yaml: line 2, column 1: mapping key "name" already defined at line 1'),
    ],
)
def test_yaml_anchors_aliases_merges_and_duplicates_are_rejected(body: str, message: str) -> None:
    assert bad_request(body).message == message


def test_billion_laughs_is_refused_before_expansion() -> None:
    lol = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    lol += "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    assert "anchors are not allowed" in bad_request(lol).message


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        ("name: [\n", "text/yaml", "yaml: line 2, column 1"),
        ("a: b: c\n", "text/yaml", "yaml: line 1, column 5: mapping values are not allowed here"),
        ("name: j\n---\nname: k\n", "text/yaml", "single document"),
        ("name: !!int abc\n", "text/yaml", "yaml:"),
        ("{bad", "application/json", "json: Expecting property name enclosed in double quotes: line 1 column 2"),
        ('{"name": NaN}', "application/json", "json: invalid number NaN"),
        ("", "application/json", "json: Expecting value: line 1 column 1"),
        ("", "text/yaml", "must be a mapping"),
        ("- a\n- b\n", "text/yaml", "must be a mapping of fields, not list"),
        ('"just text"', "application/json", "must be a mapping of fields, not string"),
        (b"\xff\xfe", "application/json", "not valid UTF-8"),
        ("[" * 5000 + "]" * 5000, "application/json", "limits.depth"),
    ],
)
def test_malformed_documents(body: str | bytes, content_type: str, fragment: str) -> None:
    err = bad_request(body, content_type)
    assert not isinstance(err, ValidationFailed)
    assert fragment in err.message


def test_yaml_scalars_are_coerced_to_their_text_in_string_maps() -> None:
    body = """\
name: j
inputs: {count: 5, flag: true, ratio: 1.50, hex: 0x1F, word: yes, day: 2024-01-01, blank: }
tasks:
  - name: t
    env: {N: 1, B: false, F: 2.0, E: 1e3, 8080: port, true: t}
    cmd: [echo, 1, true]
"""
    job = parse_job(body.encode(), "text/yaml")
    assert job.inputs == {
        "count": "5", "flag": "true", "ratio": "1.50", "hex": "0x1F", "word": "yes", "day": "2024-01-01",
        "blank": "",
    }  # fmt: skip
    assert job.tasks is not None
    assert job.tasks[0].env == {"N": "1", "B": "false", "F": "2.0", "E": "1e3", "8080": "port", "true": "t"}
    assert job.tasks[0].cmd == ["echo", "1", "true"]


def test_yaml_scalars_go_into_string_fields_and_numbers_into_int_fields() -> None:
    body = "name: 2024\ntasks:\n  - name: true\n    priority: 3\n    retry: {limit: 0x2}\n"
    job = parse_job(body.encode(), "text/yaml")
    assert job.name == "2024"
    assert job.tasks is not None
    assert (job.tasks[0].name, job.tasks[0].priority) == ("true", 3)
    assert job.tasks[0].retry is not None and job.tasks[0].retry.limit == 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"inputs": {"a": 1}}, "inputs.a: expected string, got integer"),
        ({"secrets": {"a": True}}, "secrets.a: expected string, got boolean"),
        ({"inputs": {"a": None}}, "inputs.a: expected string, got null"),
        ({"tasks": [{"name": "t", "env": {"X": 1.5}}]}, "tasks[0].env.X: expected string, got number"),
        ({"name": 7}, "name: expected string, got integer"),
        ({"tasks": [{"name": "t", "priority": "1"}]}, "tasks[0].priority: expected integer, got string"),
        ({"tasks": [{"name": "t", "priority": 1.0}]}, "tasks[0].priority: expected integer, got number"),
        ({"tasks": [{"name": "t", "cmd": "echo"}]}, "tasks[0].cmd: expected list, got string"),
        ({"tasks": [{"name": "t", "retry": 3}]}, "tasks[0].retry: expected mapping, got integer"),
        ({"tasks": {"name": "t"}}, "tasks: expected list, got mapping"),
        ({"tasks": [None]}, "tasks[0]: expected mapping, got null"),
    ],
)
def test_json_type_mismatches_name_the_path(doc: dict[str, object], message: str) -> None:
    body = {"name": "j", "tasks": [{"name": "t"}], **doc}
    err = bad_request(json.dumps(body), "application/json")
    assert err.message.splitlines() == [message]


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"id": "abc"}, "id"),
        ({"foo": 1}, "foo"),
        ({"tasks": [{"name": "t", "foo": 1}]}, "tasks[0].foo"),
        ({"tasks": [{"name": "t", "retry": {"limit": 1, "backoff": 2}}]}, "tasks[0].retry.backoff"),
        ({"tasks": [{"name": "t", "limits": {"cpu": "1"}}]}, "tasks[0].limits.cpu"),
        ({"tasks": [{"name": "t", "pre": [{"name": "p", "queue": "q"}]}]}, "tasks[0].pre[0].queue"),
        (
            {"tasks": [{"name": "p", "parallel": {"tasks": [{"name": "c", "bogus": True}]}}]},
            "tasks[0].parallel.tasks[0].bogus",
        ),
        (
            {"tasks": [{"name": "e", "each": {"list": "x", "task": {"name": "c", "x": 1}}}]},
            "tasks[0].each.task.x",
        ),
        (
            {"tasks": [{"name": "s", "subjob": {"name": "n", "tasks": [{"name": "c", "y": 1}]}}]},
            "tasks[0].subjob.tasks[0].y",
        ),
        ({"defaults": {"retries": 1}}, "defaults.retries"),
        ({"webhooks": [{"url": "http://x", "method": "GET"}]}, "webhooks[0].method"),
    ],
)
def test_unknown_fields_are_rejected_at_every_depth(doc: dict[str, object], path: str) -> None:
    body = {"name": "j", "tasks": [{"name": "t"}], **doc}
    err = bad_request(json.dumps(body), "application/json")
    assert f"{path}: unknown field" in err.message.splitlines()
    assert "pydantic" not in err.message


def test_unknown_yaml_key_names_the_path() -> None:
    err = bad_request("name: j\ntasks:\n  - name: t\n    imagee: alpine\n")
    assert err.message == "tasks[0].imagee: unknown field"
    assert bad_request("name: j\ntasks:\n  - name: t\n    1: x\n").message == "tasks[0].1: unknown field"
    assert "mapping keys must be scalars" in bad_request("name: j\n[a]: x\n").message


def test_several_decoding_problems_are_reported_together() -> None:
    err = bad_request("name: j\ntasks:\n  - name: t\n    foo: 1\n    priority: high\n")
    assert sorted(err.message.splitlines()) == [
        "tasks[0].foo: unknown field",
        "tasks[0].priority: expected integer, got string",
    ]


def test_missing_required_sub_fields_are_validation_failures() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_job(b"name: j\ntasks:\n  - name: t\n    retry: {}\n", "text/yaml")
    assert info.value.problems == ["tasks[0].retry.limit is required"]


def test_if_alias_and_camel_case_keys_are_read() -> None:
    body = b"name: j\nautoDelete: {after: 1h}\ntasks:\n  - name: t\n    if: 'true'\n"
    job = parse_job(body, "text/yaml")
    assert job.autoDelete is not None and job.autoDelete.after == "1h"
    assert job.tasks is not None and job.tasks[0].if_ == "true"
    assert to_dict(job.tasks[0]) == {"name": "t", "if": "true"}


def test_user_and_role_lookups_are_used() -> None:
    body = b"name: j\ntasks: [{name: t}]\npermissions: [{user: alice}, {role: admins}]\n"
    assert parse_job(body, "text/yaml", user_exists={"alice"}.__contains__, role_exists=lambda r: True)
    with pytest.raises(ValidationFailed) as info:
        parse_job(body, "text/yaml", user_exists=lambda u: False, role_exists=lambda r: False)
    assert info.value.problems == [
        "permissions[0].user refers to an unknown user (invalidusername): alice",
        "permissions[1].role refers to an unknown role (invalidrole): admins",
    ]


def test_to_dict_round_trips_a_minimal_task() -> None:
    task = TaskInput(name="t", image="alpine")
    assert to_dict(task) == {"name": "t", "image": "alpine"}
    assert TaskInput.model_validate(to_dict(task)) == task


@pytest.mark.parametrize(
    ("word", "value"), [("true", True), ("false", False), ("yes", True), ("Off", False), ("Y", True), ("NO", False)]
)
def test_yaml_bool_field_reads_yaml_1_1_words_like_go(word: str, value: bool) -> None:
    body = f"name: j\ntasks:\n  - name: t\n    subjob: {{name: s, tasks: [{{name: c}}], detached: {word}}}\n"
    job = parse_job(body.encode(), "text/yaml")
    assert job.tasks[0].subjob is not None and job.tasks[0].subjob.detached is value


@pytest.mark.parametrize("word", ['"true"', "maybe", "1"])
def test_yaml_bool_field_rejects_other_values(word: str) -> None:
    body = f"name: j\ntasks:\n  - name: t\n    subjob: {{name: s, tasks: [{{name: c}}], detached: {word}}}\n"
    assert "tasks[0].subjob.detached: expected boolean" in bad_request(body).message
