"""A hand corpus of hostile job documents, posted over HTTP to the session engine (issue 9, "a suite that keeps
it so"). Template abuse is the expression suite's; this corpus is about the document itself.

Every document: the answer is a 4xx (or 200 when the document is legitimately valid), never a 5xx; its body is
JSON `{"message": ...}` and, for a 400, the message names the field or limit expected; a rejected document
leaves the number of stored jobs unchanged. Meanwhile a thread calls `GET /health` continually (10 s timeout):
every call must answer 200 — a hang detector, not a speed test. The figures (requests sent, 5xx seen, longest
/health stall) are printed at the end of the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.health_watch import HealthWatch, watching_health
from tests.integration.conftest import LiveEngine

JSON, YAML = "application/json", "text/yaml"
OK = '{"name": "t", "if": "false"}'  # a task that is skipped: a valid document costs no container


@dataclass
class Case:
    id: str
    content_type: str
    body: bytes
    status: int = 400  # 200: legitimately valid; 413: over the body limit
    fragment: str = ""  # what a 400's message must name (a field path or a limit)


def j(text: str) -> bytes:
    return text.encode()


def job_with(task_fields: str = "", **top: str) -> bytes:
    """A JSON job whose one task (skipped) has `task_fields` added; `top` adds raw JSON top-level fields."""
    extra = "".join(f', "{k}": {v}' for k, v in top.items())
    task = '{"name": "t", "if": "false"' + (", " + task_fields if task_fields else "") + "}"
    return j('{"name": "j", "tasks": [' + task + "]" + extra + "}")


def nested_tasks(levels: int, kind: str) -> str:
    task = OK
    for i in range(levels):
        if kind == "parallel":
            task = f'{{"name": "p{i}", "parallel": {{"tasks": [{task}]}}}}'
        elif kind == "each":
            task = f'{{"name": "e{i}", "each": {{"list": "[1]", "task": {task}}}}}'
        else:
            task = f'{{"name": "s{i}", "subjob": {{"name": "s", "tasks": [{task}]}}}}'
    return f'{{"name": "j", "tasks": [{task}]}}'


def many_tasks(parallels: int, per: int) -> str:
    children = ", ".join([OK] * per)
    blocks = ", ".join(f'{{"name": "p{i}", "parallel": {{"tasks": [{children}]}}}}' for i in range(parallels))
    return f'{{"name": "j", "tasks": [{blocks}]}}'


BILLION_LAUGHS = """name: j
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
tasks: [*g]
"""

CORPUS = [
    # --- deep nesting -------------------------------------------------------------------------------------
    Case(
        "json-deep-lists-10k",
        JSON,
        j('{"name": "j", "tasks": ' + "[" * 10_000 + "]" * 10_000 + "}"),
        400,
        "limits.depth",
    ),
    Case("json-deep-lists-200k-unclosed", JSON, j('{"name": "j", "tasks": ' + "[" * 200_000), 400, "limits.depth"),
    Case(
        "json-deep-maps-50k",
        JSON,
        j('{"name": "j", "tasks": [' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "]}"),
        400,
        "limits.depth",
    ),
    Case("json-deep-in-env", JSON, job_with('"env": {"A": ' + "[" * 5_000 + "]" * 5_000 + "}"), 400, "tasks[0].env.A"),
    Case("yaml-deep-flow-10k", YAML, j("name: j\ntasks: " + "[" * 10_000 + "]" * 10_000), 400, "limits.depth"),
    Case("yaml-deep-flow-100k-unclosed", YAML, j("name: j\ntasks: " + "{a: " * 100_000), 400, "limits.depth"),
    Case(
        "yaml-deep-block",
        YAML,
        j("name: j\ntasks:\n" + "".join(" " * i + "- \n" for i in range(400))),
        400,
        "limits.depth",
    ),
    Case("parallel-17-deep", JSON, j(nested_tasks(17, "parallel")), 400, "limits.depth is 16"),
    Case("each-17-deep", JSON, j(nested_tasks(17, "each")), 400, "limits.depth is 16"),
    Case("subjob-17-deep", JSON, j(nested_tasks(17, "subjob")), 400, "limits.depth is 16"),
    Case("parallel-16-deep-is-valid", JSON, j(nested_tasks(16, "parallel")), 200),
    # --- huge lists, giant strings, many tasks ------------------------------------------------------------
    Case(
        "tags-20k", JSON, job_with(tags=json.dumps(["x"] * 20_000)), 400, "tags has 20000 entries: limits.list.length"
    ),
    Case(
        "env-20k",
        JSON,
        job_with('"env": ' + json.dumps({f"K{i}": "" for i in range(20_000)})),
        400,
        "tasks[0].env has 20000 entries",
    ),
    Case(
        "tasks-list-10001",
        JSON,
        j('{"name": "j", "tasks": [' + ", ".join([OK] * 10_001) + "]}"),
        400,
        "tasks has 10001 entries",
    ),
    Case("tasks-10200-nested", JSON, j(many_tasks(3, 3_400)), 400, "limits.tasks is 10000"),
    Case(
        "string-70k", JSON, job_with(description=json.dumps("x" * 70_000)), 400, "description is 70000 characters long"
    ),
    Case("key-70k", JSON, job_with('"env": {' + json.dumps("K" * 70_000) + ': "v"}'), 400, "limits.string.length"),
    Case("string-450k", JSON, job_with(description=json.dumps("x" * 450_000)), 400, "limits.string.length"),
    Case("body-over-limit", JSON, job_with(description=json.dumps("x" * 600_000)), 413),
    Case(
        "many-file-names-10k",
        JSON,
        job_with('"files": ' + json.dumps({f"/abs/{i}": "" for i in range(9_000)})),
        400,
        "tasks[0].files: file name",
    ),
    # --- NUL and odd unicode ------------------------------------------------------------------------------
    Case(
        "json-nul-in-name", JSON, j('{"name": "a\\u0000b", "tasks": [' + OK + "]}"), 400, "name must not contain a NUL"
    ),
    Case("json-nul-in-env-key", JSON, job_with('"env": {"A\\u0000": "x"}'), 400, "tasks[0].env (key"),
    Case("yaml-raw-nul", YAML, b"name: a\x00b\ntasks:\n  - name: t\n", 400, "yaml:"),
    Case(
        "json-lone-surrogate",
        JSON,
        j('{"name": "\\ud800", "tasks": [' + OK + "]}"),
        400,
        "name contains a lone UTF-16 surrogate",
    ),
    Case(
        "json-lone-low-surrogate-in-secret",
        JSON,
        job_with(secrets='{"s": "\\udfff"}'),
        400,
        "secrets.s contains a lone",
    ),
    Case("yaml-escaped-surrogate", YAML, b'name: "\\ud800"\ntasks:\n  - name: t\n', 400, ""),
    Case("json-bom", JSON, b"\xef\xbb\xbf" + job_with(), 400, "json:"),
    Case("yaml-bom-is-valid", YAML, b"\xef\xbb\xbfname: j\ntasks:\n  - name: t\n    if: 'false'\n", 200),
    Case(
        "rtl-and-zero-width-are-valid",
        JSON,
        j('{"name": "\\u202egnp.exe\\u200b\\u200d\\ufeff", "tasks": [' + OK + "]}"),
        200,
    ),
    Case("emoji-and-combining-are-valid", JSON, j('{"name": "\\ud83d\\udca5e\\u0301", "tasks": [' + OK + "]}"), 200),
    Case("invalid-utf8", JSON, b'{"name": "\xff\xfe", "tasks": []}', 400, "not valid UTF-8"),
    Case("overlong-utf8", YAML, b"name: \xc0\xafetc\ntasks: []\n", 400, "not valid UTF-8"),
    Case("utf16-body", JSON, job_with().decode().encode("utf-16"), 400, "not valid UTF-8"),
    Case("encoded-surrogate-utf8", JSON, b'{"name": "\xed\xa0\x80", "tasks": []}', 400, "not valid UTF-8"),
    # --- YAML bombs, anchors, merge keys, tags ----------------------------------------------------------------
    Case("billion-laughs", YAML, j(BILLION_LAUGHS), 400, "anchors are not allowed"),
    Case("alias-only", YAML, b"name: *x\ntasks: []\n", 400, "yaml:"),
    Case(
        "merge-key-with-alias",
        YAML,
        b"base: &b {name: t}\nname: j\ntasks:\n  - <<: *b\n",
        400,
        "anchors are not allowed",
    ),
    Case("merge-key-inline", YAML, b"name: j\ntasks:\n  - <<: {name: t}\n", 400, "merge keys (<<) are not allowed"),
    Case(
        "python-object-apply",
        YAML,
        b'name: !!python/object/apply:os.system ["touch /tmp/tork-pwned"]\ntasks: []\n',
        400,
        "yaml:",
    ),
    Case("python-name", YAML, b"name: !!python/name:os.system\ntasks: []\n", 400, "yaml:"),
    Case("python-module", YAML, b"name: !!python/module:os\ntasks: []\n", 400, "yaml:"),
    Case("binary-tag", YAML, b"name: !!binary aGVsbG8=\ntasks:\n  - name: t\n", 400, "name: expected string"),
    Case("set-tag", YAML, b"name: j\ntags: !!set {a, b}\ntasks:\n  - name: t\n", 400, "tags: expected list"),
    Case("timestamp-tag", YAML, b"name: !!timestamp 2001-12-14\ntasks:\n  - name: t\n", 400, "name: expected string"),
    Case("custom-tag", YAML, b"name: !evil j\ntasks:\n  - name: t\n", 400, "yaml:"),
    Case("str-tag-is-valid", YAML, b"name: !!str j\ntasks:\n  - name: t\n    if: 'false'\n", 200),
    Case("complex-key", YAML, b"? [a, b]\n: c\nname: j\ntasks: []\n", 400, "mapping keys must be scalars"),
    Case("multi-document", YAML, b"name: j\ntasks: []\n---\nname: k\n", 400, "single document"),
    # --- duplicate keys -------------------------------------------------------------------------------------
    Case(
        "yaml-duplicate-key",
        YAML,
        b"name: j\nname: k\ntasks:\n  - name: t\n",
        400,
        'mapping key "name" already defined',
    ),
    Case(
        "yaml-duplicate-env-key", YAML, b"name: j\ntasks:\n  - name: t\n    env: {A: 1, A: 2}\n", 400, 'mapping key "A"'
    ),
    # Go's JSON decoder keeps the last of duplicate keys, and so does tork_ray: a valid document.
    Case("json-duplicate-key-last-wins", JSON, j('{"name": "j", "name": "k", "tasks": [' + OK + "]}"), 200),
    # --- wrong types everywhere -----------------------------------------------------------------------------
    Case("root-list", JSON, b"[1, 2]", 400, "must be a mapping of fields, not list"),
    Case("root-string", JSON, b'"job"', 400, "not string"),
    Case("root-null", JSON, b"null", 400, "not null"),
    Case("tasks-string", JSON, b'{"name": "j", "tasks": "t"}', 400, "tasks: expected list"),
    Case("tasks-map", JSON, b'{"name": "j", "tasks": {"name": "t"}}', 400, "tasks: expected list"),
    Case("task-number", JSON, b'{"name": "j", "tasks": [1]}', 400, "tasks[0]: expected mapping"),
    Case("name-list", JSON, j('{"name": ["j"], "tasks": [' + OK + "]}"), 400, "name: expected string"),
    Case("env-value-number", JSON, job_with('"env": {"A": 1}'), 400, "tasks[0].env.A: expected string"),
    Case("priority-string", JSON, job_with('"priority": "9"'), 400, "tasks[0].priority: expected integer"),
    Case("retry-list", JSON, job_with('"retry": [1]'), 400, "tasks[0].retry: expected mapping"),
    Case("files-list", JSON, job_with('"files": ["a"]'), 400, "tasks[0].files: expected mapping"),
    Case("mounts-map", JSON, job_with('"mounts": {"type": "volume"}'), 400, "tasks[0].mounts: expected list"),
    Case(
        "concurrency-float",
        JSON,
        j('{"name": "j", "tasks": [{"name": "e", "each": {"list": "[1]", "concurrency": 1.5, "task": ' + OK + "}}]}"),
        400,
        "concurrency: expected integer",
    ),
    Case(
        "nulls-everywhere",
        JSON,
        b'{"name": null, "tasks": [{"name": null, "env": null, "files": {"a": null}}]}',
        400,
        "tasks[0].files.a",
    ),
    Case("unknown-field", JSON, job_with('"evil": true'), 400, "tasks[0].evil: unknown field"),
    Case(
        "bool-as-string-field",
        YAML,
        b"name: j\ntasks:\n  - name: t\n    if: 'false'\n    env: {A: yes, B: 1e3, C: 0x1F}\n",
        200,
    ),
    # --- path names (point 1) -------------------------------------------------------------------------------
    Case(
        "files-absolute",
        JSON,
        job_with('"files": {"/tmp/x": "a"}'),
        400,
        'tasks[0].files: file name "/tmp/x" is an absolute path',
    ),
    Case(
        "files-dotdot",
        JSON,
        job_with('"files": {"../../../../tmp/y": "b"}'),
        400,
        'file name "../../../../tmp/y" has a .. segment',
    ),
    Case("files-empty-name", JSON, job_with('"files": {"": "b"}'), 400, 'file name "" is empty'),
    Case("files-nul-name", JSON, job_with('"files": {"a\\u0000b": "b"}'), 400, "contains a NUL character"),
    Case(
        "files-yaml-dotdot-in-pre",
        YAML,
        b"name: j\ntasks:\n  - name: t\n    pre:\n      - name: p\n        files: {'a/../../b': x}\n",
        400,
        "tasks[0].pre[0].files: file name",
    ),
    Case(
        "files-in-subjob",
        JSON,
        j(
            '{"name": "j", "tasks": [{"name": "s", "subjob": {"name": "s", '
            '"tasks": [{"name": "c", "files": {"/etc/passwd": "x"}}]}}]}'
        ),
        400,
        'tasks[0].subjob.tasks[0].files: file name "/etc/passwd"',
    ),
    Case("workdir-container-path-is-valid", JSON, job_with('"workdir": "/app/../etc"'), 200),
    Case(
        "mount-target-tork",
        JSON,
        job_with('"mounts": [{"type": "volume", "target": "/x/../tork"}]'),
        400,
        "must not be /tork",
    ),
    # --- huge numbers, NaN, Infinity ------------------------------------------------------------------------
    Case("json-int-5000-digits", JSON, job_with('"priority": ' + "9" * 5_000), 400, "json:"),
    Case(
        "yaml-int-5000-digits",
        YAML,
        j("name: j\ntasks:\n  - name: t\n    priority: " + "9" * 5_000 + "\n"),
        400,
        "yaml:",
    ),
    Case(
        "json-int-64bit-overflow",
        JSON,
        job_with('"priority": 18446744073709551617'),
        400,
        "tasks[0].priority must be between 0 and 9",
    ),
    Case("json-float-overflow", JSON, job_with('"priority": 1e999'), 400, "tasks[0].priority: expected integer"),
    Case(
        "json-huge-concurrency",
        JSON,
        j(
            '{"name": "j", "tasks": [{"name": "e", "each": {"list": "[1]", '
            '"concurrency": 99999999999999999999, "task": ' + OK + "}}]}"
        ),
        400,
        "concurrency must be between 0 and 99999",
    ),
    Case("json-nan", JSON, job_with('"priority": NaN'), 400, "json: invalid number NaN"),
    Case("json-infinity", JSON, job_with('"priority": Infinity'), 400, "json: invalid number Infinity"),
    Case("json-minus-infinity", JSON, job_with('"priority": -Infinity'), 400, "json: invalid number -Infinity"),
    Case(
        "yaml-nan",
        YAML,
        b"name: j\ntasks:\n  - name: t\n    priority: .nan\n",
        400,
        "tasks[0].priority: expected integer",
    ),
    Case(
        "yaml-inf",
        YAML,
        b"name: j\ntasks:\n  - name: t\n    priority: -.inf\n",
        400,
        "tasks[0].priority: expected integer",
    ),
    Case(
        "retry-scaling-nan",
        YAML,
        b"name: j\ntasks:\n  - name: t\n    retry: {limit: 1, scalingFactor: .nan}\n",
        400,
        "scalingFactor",
    ),
]


@dataclass
class Figures:
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)


FIGURES = Figures()


@pytest.fixture(scope="module")
def health(live_engine: LiveEngine) -> Iterator[HealthWatch]:
    with watching_health(str(live_engine.http.base_url)) as watch:
        yield watch


def submitted(engine: LiveEngine) -> set[str]:
    """The newest submitted jobs (not sub-jobs or scheduled instances, which earlier tests' jobs may still
    start in the background): what a POST of ours can add to."""
    jobs, _ = engine.store.list_jobs(1, 50)
    return {job.id for job in jobs if not job.parent_id and not job.schedule}


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_hostile_document(live_engine: LiveEngine, health: HealthWatch, case: Case) -> None:
    before = submitted(live_engine)
    response = live_engine.http.post("/jobs", content=case.body, headers={"Content-Type": case.content_type})
    FIGURES.requests += 1
    if response.status_code >= 500:
        FIGURES.server_errors.append(f"{case.id}: {response.status_code}")
    assert response.status_code < 500, response.text[:500]
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    added = submitted(live_engine) - before
    if case.status == 200:
        assert added == {body["id"]}
        live_engine.wait_for(body["id"], timeout=60)
        return
    assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"], body
    assert case.fragment in body["message"], body["message"][:1000]
    assert added == set(), "a rejected document was stored"


def test_health_answered_throughout(health: HealthWatch) -> None:
    """Runs after the corpus (pytest keeps file order): the figures, and every /health call answered 200."""
    print(
        f"\nhostile corpus: {len(CORPUS)} documents, {FIGURES.requests} POST /jobs sent, "
        f"{len(FIGURES.server_errors)} 5xx seen; beside it: {health.summary()}"
    )
    assert FIGURES.server_errors == []
    health.assert_answered()
