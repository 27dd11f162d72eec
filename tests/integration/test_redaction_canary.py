"""A canary secret planted everywhere in a job never comes out of any endpoint in clear (Decisions table)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine


def canary_job(canary: str, extra: str = "") -> str:
    return f"""
name: canary job {canary[-6:]}
description: mentions {canary} in passing
tags: [canary]
secrets:
  token: {canary}
inputs:
  db_password: {canary}
  note: uses {canary} inside
output: "{{{{ tasks.first }}}}"
webhooks:
  - url: http://127.0.0.1:9/hook
    event: none.such
    headers:
      X-Token: "{{{{ secrets.token }}}}"
{extra}
tasks:
  - name: speaks the secret
    var: first
    image: {TEST_IMAGE}
    env:
      TOKEN: "{{{{ secrets.token }}}}"
      MY_SECRET: {canary}
      PLAIN: "{{{{ inputs.note }}}}"
    run: |
      echo "token is $TOKEN and $PLAIN"
      echo -n "out $TOKEN" > $TORK_OUTPUT
  - name: fails with it
    image: {TEST_IMAGE}
    env:
      TOKEN: "{{{{ secrets.token }}}}"
    run: |
      echo "about to fail: $TOKEN"
      exit 3
"""


class Collector:
    """Every body an endpoint answered, to be searched for the canary at the end."""

    def __init__(self, http: httpx.Client, canary: str) -> None:
        self.http = http
        self.canary = canary
        self.seen: list[tuple[str, str]] = []

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.seen.append((f"{method} {path} {kwargs.get('params', '')}", response.text))
        return response

    def stream(self, path: str) -> str:
        with self.http.stream("GET", path, timeout=60) as response:
            text = "".join(response.iter_text())
        self.seen.append((f"GET {path}", text))
        return text

    def leaks(self) -> list[str]:
        return [where for where, text in self.seen if self.canary in text]


@pytest.fixture(scope="module")
def canary() -> str:
    return "cnry" + uuid.uuid4().hex[:12]


def test_the_canary_never_leaves_the_server(live_engine: LiveEngine, canary: str) -> None:
    c = Collector(live_engine.http, canary)
    headers = {"Content-Type": "text/yaml"}
    submitted = c.call("POST", "/jobs", content=canary_job(canary).encode(), headers=headers)
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json()["inputs"]["db_password"] == "[REDACTED]"

    waited = c.call("POST", "/jobs", content=canary_job(canary, extra="wait: {timeout: 60s}").encode(), headers=headers)
    assert waited.status_code == 200 and waited.json()["state"] == "FAILED", waited.text

    stream = c.stream(f"/jobs/{job_id}/log/stream")  # follows the first job live, to its end
    assert "[REDACTED]" in stream
    job = c.call("GET", f"/jobs/{job_id}").json()
    assert job["state"] == "FAILED"
    assert job["secrets"] == {"token": "[REDACTED]"}
    assert job["execution"][0]["result"] == "out [REDACTED]"
    assert job["context"]["tasks"]["first"] == "out [REDACTED]"
    assert "[REDACTED]" in job["error"]

    for task in job["execution"]:
        c.call("GET", f"/tasks/{task['id']}")
        log = c.call("GET", f"/tasks/{task['id']}/log").json()
        assert "[REDACTED]" in "".join(p["contents"] for p in log["items"])
        c.call("GET", f"/tasks/{task['id']}/log", params={"q": "token"})
        c.stream(f"/tasks/{task['id']}/log/stream")
    c.call("GET", f"/jobs/{job_id}/log")
    c.call("GET", f"/jobs/{job_id}/log", params={"q": "fail"})
    c.call("GET", f"/jobs/{job_id}/log", params={"q": canary})
    c.call("GET", "/jobs")
    listed = c.call("GET", "/jobs", params={"q": "tag:canary", "size": 20}).json()
    assert job_id in {item["id"] for item in listed["items"]}
    c.call("GET", "/jobs", params={"q": "passing"})
    c.call("GET", "/jobs", params={"q": canary})
    for path in ("/health", "/queues", "/queues/default", "/nodes", "/metrics", "/metrics/prometheus"):
        c.call("GET", path)

    # Error texts: an invalid document whose error message quotes a secret value.
    bad = f"name: bad\nsecrets: {{token: {canary}}}\ntasks: [{{name: t, image: x, run: y, timeout: {canary}}}]"
    rejected = c.call("POST", "/jobs", content=bad.encode(), headers=headers)
    assert rejected.status_code == 400 and "[REDACTED]" in rejected.json()["message"]
    assert c.leaks() == []
    assert len(c.seen) >= 25


def test_canary_hidden_while_the_task_is_still_running(live_engine: LiveEngine, canary: str) -> None:
    slow = f"""
name: slow canary
secrets: {{token: {canary}}}
tasks:
  - name: t
    image: {TEST_IMAGE}
    env: {{TOKEN: "{{{{ secrets.token }}}}"}}
    run: |
      echo "now $TOKEN"
      sleep 30
"""
    job_id = live_engine.submit(slow)["id"]
    c = Collector(live_engine.http, canary)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = c.call("GET", f"/jobs/{job_id}").json()
        if job["execution"] and c.call("GET", f"/tasks/{job['execution'][0]['id']}/log").json()["items"]:
            break
        time.sleep(0.1)
    task_id = job["execution"][0]["id"]
    c.call("GET", f"/jobs/{job_id}/log")
    c.call("GET", "/jobs", params={"size": 20})
    c.call("PUT", f"/jobs/{job_id}/cancel")
    c.stream(f"/tasks/{task_id}/log/stream")
    assert json.loads(c.call("GET", f"/tasks/{task_id}").text)["state"] == "CANCELLED"
    assert c.leaks() == []
