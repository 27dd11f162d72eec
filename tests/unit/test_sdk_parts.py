"""Pure parts of the SDK and the command: job documents as bodies, the errors of status codes, server-sent
events, tolerant models, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import tork_ray
from tork_ray.cli import output
from tork_ray.sdk.calls import ERRORS, EventReader, document_body, error_of
from tork_ray.sdk.discovery import COORDINATOR_NAME, resolve_url
from tork_ray.settings import RaySettings


def test_documents_in_every_form(tmp_path: Path) -> None:
    text = "name: x\ntasks:\n  - name: t\n    run: echo hi\n"
    assert document_body(text) == (text.encode(), "text/yaml")
    assert document_body(text.encode()) == (text.encode(), "text/yaml")
    path = tmp_path / "job.json"
    path.write_text('{"name": "x"}')
    assert document_body(path) == (b'{"name": "x"}', "application/json")
    assert document_body(str(path)) == (b'{"name": "x"}', "application/json")  # a str naming a file
    assert document_body("no-such-file.yaml") == (b"no-such-file.yaml", "text/yaml")  # else it is the text
    body, kind = document_body({"name": "x", "tasks": []})
    assert (json.loads(body), kind) == ({"name": "x", "tasks": []}, "application/json")
    typed = tork_ray.JobInput.model_validate({"name": "typed", "tasks": [{"name": "t", "run": "true"}]})
    assert json.loads(document_body(typed)[0])["name"] == "typed"
    with pytest.raises(TypeError, match="JobInput"):
        document_body(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_every_error_status_is_its_tork_error(status: int) -> None:
    error = error_of(httpx.Response(status, json={"message": f"m{status}"}))
    assert type(error) is ERRORS[status] and isinstance(error, tork_ray.TorkError)
    assert error.message == f"m{status}" and error.status_code == status


def test_other_statuses_and_bodies() -> None:
    error = error_of(httpx.Response(502, text="bad gateway"))
    assert type(error) is tork_ray.TorkError and (error.status_code, error.message) == (502, "bad gateway")
    limited = error_of(httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "7"}))
    assert isinstance(limited, tork_ray.TooManyRequests) and limited.retry_after == 7


def test_server_sent_events() -> None:
    lines = ["event: log", "data: one", "", ": keepalive", "", "data: a", "data: b", "", "event: end", "data: {}", ""]
    assert list(EventReader().events(lines)) == [("log", "one"), ("message", "a\nb"), ("end", "{}")]


def test_models_keep_what_they_do_not_know() -> None:
    # An answer with fields this SDK does not know (a newer engine, or Tork) still parses, and keeps them.
    job = tork_ray.Job.model_validate(
        {"id": "j1", "state": "SOMETHING_NEW", "execution": [{"id": "t1", "gpuModel": "x"}], "newField": {"a": 1}}
    )
    assert job.state == "SOMETHING_NEW" and not job.ended and job.execution[0].model_extra == {"gpuModel": "x"}
    assert job.to_json()["newField"] == {"a": 1}
    assert tork_ray.Job.model_validate({"id": "j", "state": "COMPLETED"}).state == tork_ray.JobState.COMPLETED


def test_the_url_comes_from_the_argument_then_the_environment() -> None:
    assert resolve_url("http://a:1", {"TORK_ENDPOINT": "http://b:2"}) == "http://a:1"
    assert resolve_url(None, {"TORK_ENDPOINT": "http://b:2"}) == "http://b:2"


def test_the_coordinator_name_matches_the_settings() -> None:
    assert RaySettings.coordinator_name == COORDINATOR_NAME


def test_exit_codes() -> None:
    failed = tork_ray.Job(id="j", state="FAILED")
    assert output.exit_code(tork_ray.JobFailed(failed, "x")) == output.JOB_FAILED
    cancelled = tork_ray.Job(id="j", state="CANCELLED")
    assert output.exit_code(tork_ray.JobFailed(cancelled, "x")) == output.JOB_CANCELLED
    assert output.exit_code(tork_ray.WaitTimedOut("x")) == output.TIMED_OUT
    assert output.exit_code(tork_ray.Unavailable("x")) == output.UNAVAILABLE
    assert output.exit_code(tork_ray.NotFound("x")) == output.ERROR
    assert output.job_exit_code(tork_ray.Job(id="j", state="COMPLETED")) == output.OK


def test_wait_polls_a_server_without_log_streams() -> None:
    # Tork's own API has no /log/stream: wait() falls back to polling the job (a fake server: pure logic).
    states = iter(["RUNNING", "RUNNING", "COMPLETED"])
    seen: list[str] = []

    def tork(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/log/stream"):
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"id": "j1", "state": next(states), "execution": []})

    with tork_ray.Client("http://tork", transport=httpx.MockTransport(tork)) as client:
        assert client.wait("j1", timeout=60).state == "COMPLETED"
    assert seen.count("/jobs/j1") == 3 and seen.count("/jobs/j1/log/stream") == 2
