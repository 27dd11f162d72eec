"""Every validation rule, posted over HTTP: a 400 naming the field and rule, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.engine import LiveEngine
from tests.unit.spec.test_spec_validate import CASES


@pytest.mark.parametrize(("doc", "expected"), [pytest.param(doc, lines, id=name) for name, doc, lines in CASES])
def test_rule_is_enforced_over_http(live_engine: LiveEngine, doc: dict[str, Any], expected: list[str]) -> None:
    before = live_engine.store.list_jobs(1, 1)[1]
    response = live_engine.http.post(
        "/jobs", content=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    for line in expected:
        assert line in message
    assert live_engine.store.list_jobs(1, 1)[1] == before


def test_content_types(live_engine: LiveEngine) -> None:
    body = b'{"name": "j", "tasks": [{"name": "t", "image": "alpine"}]}'
    missing = live_engine.http.post("/jobs", content=body, headers={"Content-Type": ""})
    assert missing.status_code == 400 and missing.json()["message"] == "missing content type"
    odd = live_engine.http.post("/jobs", content=body, headers={"Content-Type": "text/plain"})
    assert odd.status_code == 400 and odd.json()["message"] == "unknown content type: text/plain"


def test_body_over_the_limit_is_413(live_engine: LiveEngine) -> None:
    body = json.dumps({"name": "big", "description": "x" * 600_000, "tasks": [{"name": "t"}]}).encode()
    response = live_engine.http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["message"]


def test_yaml_aliases_are_refused(live_engine: LiveEngine) -> None:
    body = b"name: &n j\ndescription: *n\ntasks:\n  - name: t\n"
    response = live_engine.http.post("/jobs", content=body, headers={"Content-Type": "text/yaml"})
    assert response.status_code == 400
    assert "anchors are not allowed" in response.json()["message"]


def test_plain_text_output_is_not_an_expression(live_engine: LiveEngine) -> None:
    # SPEC §3.6: an output without braces is compiled whole, and "plain text" does not compile.
    before = live_engine.store.list_jobs(1, 1)[1]
    body = b'{"name": "j", "output": "plain text", "tasks": [{"name": "t", "image": "alpine"}]}'
    response = live_engine.http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("output is not a valid expression: ")
    assert live_engine.store.list_jobs(1, 1)[1] == before


@pytest.mark.parametrize("username", ["", "   ", "\t"])
def test_a_blank_username_must_be_provided(live_engine: LiveEngine, username: str) -> None:
    for _ in range(2):  # the second time too: no blank user was made by the first
        response = live_engine.http.post("/users", json={"username": username, "password": "secret"})
        assert response.status_code == 400, response.text
        assert response.json() == {"message": "must provide username"}
