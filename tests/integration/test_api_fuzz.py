"""Every route of our own /openapi.json, fuzzed with schemathesis (valid and invalid inputs) over real HTTP
against the session engine: never a 5xx or a hang, every 4xx a JSON {"message"}, answers as documented,
nothing half-stored, and /health answering throughout.

Bounded for `make test`: a fixed number of examples per route, derandomized (the same inputs on every run, so
CI is repeatable), no example database. Routes that change shared state are constrained so that the other
tests of the session engine are not disturbed: DELETE /queues/{name} never names a queue that exists, and
every job POST /jobs accepts is sent to a queue no node serves (nothing runs), without `wait` or webhooks,
then cancelled. Cancel and restart get generated ids, which name no real job (32 random characters)."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.engine import LiveEngine
from tests.health_watch import HANG_SECONDS, watching_health

EXAMPLES_PER_ROUTE = 60
# Repeatable in CI (derandomized, no example database), bounded by examples rather than by time.
FUZZ_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_ROUTE,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
)
OPERATIONS = [
    ("GET", "/health"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/jobs/{job_id}/log"),
    ("GET", "/jobs/{job_id}/log/stream"),
    ("PUT", "/jobs/{job_id}/cancel"),
    ("PUT", "/jobs/{job_id}/restart"),
    ("GET", "/tasks/{task_id}"),
    ("GET", "/tasks/{task_id}/log"),
    ("GET", "/tasks/{task_id}/log/stream"),
    ("GET", "/queues"),
    ("GET", "/queues/{name}"),
    ("DELETE", "/queues/{name}"),
    ("GET", "/nodes"),
    ("GET", "/metrics"),
    ("GET", "/metrics/prometheus"),
    ("POST", "/users"),
    ("POST", "/roles"),
    ("GET", "/roles"),
    ("GET", "/roles/{slug}"),
    ("GET", "/users/{username}/roles"),
    ("PUT", "/users/{username}/roles/{slug}"),
    ("DELETE", "/users/{username}/roles/{slug}"),
    ("POST", "/scheduled-jobs"),
    ("GET", "/scheduled-jobs"),
    ("GET", "/scheduled-jobs/{scheduled_job_id}"),
    ("PUT", "/scheduled-jobs/{scheduled_job_id}/pause"),
    ("PUT", "/scheduled-jobs/{scheduled_job_id}/resume"),
    ("DELETE", "/scheduled-jobs/{scheduled_job_id}"),
]


# A finished job of the session engine whose ids the fuzz uses beside generated ones, so that reads go past
# "not found" into the views, paging and log search with generated parameters; its secret must never show.
SECRET = "fuzz-canary-" + uuid.uuid4().hex[:8]
REAL_JOB = f"""
name: fuzz target
secrets:
  token: {SECRET}
tasks:
  - name: talker
    image: tork-ray-test:latest
    env:
      TOKEN: "{{{{ secrets.token }}}}"
    run: |
      echo "line one $TOKEN"
      echo "jumping over things"
"""
# Routes given real ids too (not streams: each answer waits out the stream's end grace; not cancel, restart
# or DELETE /queues: those change what other tests share).
REAL_IDS_FOR = {"/jobs/{job_id}", "/jobs/{job_id}/log", "/tasks/{task_id}", "/tasks/{task_id}/log", "/queues/{name}"}


@dataclass
class Fuzz:
    url: str
    schema: Any
    engine: LiveEngine
    http: requests.Session
    real_ids: dict[str, str]
    sent: dict[str, int] = field(default_factory=dict)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fuzz(live_engine: LiveEngine) -> Iterator[Fuzz]:
    url = str(live_engine.http.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    with watching_health(url, pause=0.05) as watch:
        job = live_engine.wait_for(live_engine.submit(REAL_JOB)["id"])
        assert job["state"] == "COMPLETED", job
        real_ids = {"job_id": job["id"], "task_id": job["execution"][0]["id"], "name": "default"}
        with requests.Session() as http:
            state = Fuzz(url, schema, live_engine, http, real_ids)
            yield state
    print(
        f"\nfuzz: {sum(state.sent.values())} requests over {len(state.sent)} routes, 5xx seen: "
        f"{len(state.server_errors)}; beside it: {watch.summary()}"
    )
    print("answers by route and status:", dict(sorted(state.statuses.items())))
    watch.assert_answered()


def _job_count(engine: LiveEngine) -> int:
    return engine.store.list_jobs(1, 1, None)[1]


def _nowhere(body: Any, queue: str) -> Any:
    """The generated job with every queue replaced by one no node serves, and no `wait` or webhooks."""
    if isinstance(body, dict):
        cleaned = {k: _nowhere(v, queue) for k, v in body.items() if k not in ("wait", "webhooks")}
        if "queue" in cleaned:
            cleaned["queue"] = queue
        return cleaned
    if isinstance(body, list):
        return [_nowhere(item, queue) for item in body]
    return body


def _prepare(fuzz: Fuzz, case: Case, existing_queues: set[str]) -> bool:
    """Constrains a case that would change shared state; False: skip it."""
    if case.method == "DELETE" and case.path_parameters and case.path_parameters.get("name") in existing_queues:
        return False
    if case.method == "POST" and case.path in ("/jobs", "/scheduled-jobs") and isinstance(case.body, dict):
        case.body = _nowhere(case.body, "fuzz-nowhere")
        defaults = case.body.get("defaults")
        case.body["defaults"] = {**(defaults if isinstance(defaults, dict) else {}), "queue": "fuzz-nowhere"}
    return True


def _check_answer(fuzz: Fuzz, case: Case, response: requests.Response, jobs_before: int | None) -> None:
    if response.status_code >= 500:
        fuzz.server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
    assert response.status_code < 500, (response.status_code, response.text[:500], case.as_curl_command())
    assert SECRET not in response.text, "the secret was shown"
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body
    case.validate_response(
        response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
    )
    if case.path == "/scheduled-jobs" and case.method == "POST" and response.status_code == 200:
        # Deleted at once, with any job it made meanwhile (on a queue no node serves).
        fuzz.engine.http.delete(f"/scheduled-jobs/{response.json()['id']}")
    if case.path == "/jobs" and case.method == "POST":
        if response.status_code == 200:
            fuzz.engine.http.put(f"/jobs/{response.json()['id']}/cancel")
        elif jobs_before is not None:
            assert _job_count(fuzz.engine) == jobs_before, "a rejected job was stored"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_route(fuzz: Fuzz, method: str, path: str) -> None:
    operation = fuzz.schema[path][method]
    existing_queues = {q["name"] for q in fuzz.engine.http.get("/queues").json()}
    label = f"{method} {path}"
    fuzz.sent.setdefault(label, 0)
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    real = {name: value for name, value in fuzz.real_ids.items() if "{" + name + "}" in path}
    if path in REAL_IDS_FOR and method == "GET":
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=real))
    if path.endswith(("/jobs", "/log")) and method == "GET":
        # The schema types `page` and `size` as strings (a bad one is our 400), so its generation sends text
        # and misses what numbers do: huge, negative, at the edges of 64 bits.
        strategies.append(
            st.tuples(_numbers, _numbers).flatmap(
                lambda ps: operation.as_strategy(query={"page": ps[0], "size": ps[1]}, path_parameters=real or None)
            )
        )
    cases = st.one_of(*strategies)

    @FUZZ_SETTINGS
    @hypothesis.given(case=cases)
    def run(case: Case) -> None:
        if not _prepare(fuzz, case, existing_queues):
            return
        jobs_before = _job_count(fuzz.engine) if case.path == "/jobs" and case.method == "POST" else None
        response = case.call(base_url=fuzz.url, session=fuzz.http, timeout=HANG_SECONDS)
        fuzz.sent[label] += 1
        fuzz.statuses[f"{label} {response.status_code}"] += 1
        _check_answer(fuzz, case, response, jobs_before)

    run()


def test_the_fuzzed_engine_still_works(fuzz: Fuzz) -> None:
    """After all that, a plain job still runs (the fuzz left the engine whole)."""
    name = "after fuzz " + uuid.uuid4().hex[:6]
    body = f"name: {name}\ntasks:\n  - name: t\n    image: tork-ray-test:latest\n    run: echo ok\n"
    job = fuzz.engine.wait_for(fuzz.engine.submit(body)["id"])
    assert job["state"] == "COMPLETED"


_text = st.text(max_size=40)
_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64, 10**9, 10**9 + 1]),
).map(str)
_key = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
# Job documents of the right shape with generated values (NUL, odd unicode, template braces, long words...):
# the schema's own generation rarely gets past validation, these reach the accept path and the views.
_jobs = st.fixed_dictionaries(
    {
        "name": _text,
        "tasks": st.lists(
            st.fixed_dictionaries(
                {"name": _text, "image": _text, "run": _text},
                optional={"env": st.dictionaries(_key, _text, max_size=3), "tags": st.lists(_text, max_size=3)},
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={
        "description": _text,
        "inputs": st.dictionaries(_key, _text, max_size=3),
        "secrets": st.dictionaries(_key, _text, max_size=3),
        "tags": st.lists(_text, max_size=3),
        "output": _text,
    },
)


def test_fuzz_job_documents(fuzz: Fuzz) -> None:
    operation = fuzz.schema["/jobs"]["POST"]
    label = "POST /jobs (shaped)"
    fuzz.sent.setdefault(label, 0)

    @FUZZ_SETTINGS
    @hypothesis.given(document=_jobs, media=st.sampled_from(["application/json", "text/yaml"]))
    def run(document: dict[str, Any], media: str) -> None:
        case = operation.Case(body=_nowhere(document, "fuzz-nowhere"), media_type=media)
        case.body["defaults"] = {"queue": "fuzz-nowhere"}
        jobs_before = _job_count(fuzz.engine)
        response = case.call(base_url=fuzz.url, session=fuzz.http, timeout=HANG_SECONDS)
        fuzz.sent[label] += 1
        fuzz.statuses[f"{label} {response.status_code}"] += 1
        _check_answer(fuzz, case, response, jobs_before)
        if response.status_code == 200:
            job = fuzz.http.get(f"{fuzz.url}/jobs/{response.json()['id']}", timeout=HANG_SECONDS)
            assert job.status_code == 200, job.text[:500]

    run()


def test_fuzz_raw_bodies(fuzz: Fuzz) -> None:
    """Bytes that are not a document at all (control characters, broken UTF-8, half a YAML flow), under every
    content type POST /jobs and POST /users take: a 400 naming the problem, nothing stored."""
    label = "POST raw bodies"
    fuzz.sent.setdefault(label, 0)
    operations = {"/jobs": fuzz.schema["/jobs"]["POST"], "/users": fuzz.schema["/users"]["POST"]}
    contents = st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode))

    @FUZZ_SETTINGS
    @hypothesis.given(
        path=st.sampled_from(sorted(operations)),
        body=contents,
        media=st.sampled_from(["application/json", "text/yaml", "application/x-yaml"]),
    )
    def run(path: str, body: bytes, media: str) -> None:
        jobs_before = _job_count(fuzz.engine)
        response = fuzz.http.post(fuzz.url + path, data=body, headers={"Content-Type": media}, timeout=HANG_SECONDS)
        fuzz.sent[label] += 1
        fuzz.statuses[f"{label} {path} {response.status_code}"] += 1
        case = operations[path].Case(body=body, media_type=media)
        _check_answer(fuzz, case, response, jobs_before if path == "/jobs" else None)

    run()


_crons = st.one_of(
    st.sampled_from(["@daily", "@every 1h", "0 0 1 1 *", "CRON_TZ=Europe/Paris 30 2 * * 1-5", "*/15 * * * *"]),
    _text,
)


def test_fuzz_scheduled_job_documents(fuzz: Fuzz) -> None:
    """Scheduled jobs of the right shape with generated values and crons: a summary or a 400, never a secret
    shown; each one accepted is read back (its secrets redacted), then deleted at once (it would fire on a queue
    nobody serves)."""
    operation = fuzz.schema["/scheduled-jobs"]["POST"]
    label = "POST /scheduled-jobs (shaped)"
    fuzz.sent.setdefault(label, 0)

    @FUZZ_SETTINGS
    @hypothesis.given(document=_jobs, cron=_crons, media=st.sampled_from(["application/json", "text/yaml"]))
    def run(document: dict[str, Any], cron: str, media: str) -> None:
        body = {**_nowhere(document, "fuzz-nowhere"), "defaults": {"queue": "fuzz-nowhere"}, "schedule": {"cron": cron}}
        case = operation.Case(body=body, media_type=media)
        response = case.call(base_url=fuzz.url, session=fuzz.http, timeout=HANG_SECONDS)
        fuzz.sent[label] += 1
        fuzz.statuses[f"{label} {response.status_code}"] += 1
        if response.status_code == 200:  # read back before _check_answer deletes it
            shown = fuzz.http.get(f"{fuzz.url}/scheduled-jobs/{response.json()['id']}", timeout=HANG_SECONDS)
            assert shown.status_code == 200, shown.text[:500]
            secrets = document.get("secrets") or {}
            assert all(shown.json().get("secrets", {}).get(k) == "[REDACTED]" for k in secrets), shown.text[:500]
        _check_answer(fuzz, case, response, None)

    run()
