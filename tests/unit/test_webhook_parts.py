"""Webhooks' pure parts: which change fires which event, `if` with Tork's and JSON names, summaries, signing,
the allow-list, and settings."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from tork_ray.domain.models import Job, Task
from tork_ray.domain.states import JobState, TaskState
from tork_ray.errors import BadRequest, ExpressionError
from tork_ray.settings import load_settings
from tork_ray.webhooks import events
from tork_ray.webhooks.events import (
    JOB_PROGRESS,
    JOB_STATE_CHANGE,
    TASK_PROGRESS,
    TASK_STATE_CHANGE,
    Fired,
    condition_holds,
    job_fired,
    task_fired,
)
from tork_ray.webhooks.signing import signature, signed_headers
from tork_ray.webhooks.targets import TargetPolicy, TargetRefused

J = JobState
T = TaskState


@pytest.mark.parametrize(
    ("old", "new", "changes", "fired"),
    [
        (None, J.PENDING, {}, Fired(JOB_STATE_CHANGE, "PENDING")),
        (J.PENDING, J.SCHEDULED, {"position": 1}, None),  # Tork never reports SCHEDULED
        (J.SCHEDULED, J.RUNNING, {}, Fired(JOB_STATE_CHANGE, "RUNNING")),
        (J.RUNNING, J.COMPLETED, {"progress": 100.0}, Fired(JOB_STATE_CHANGE, "COMPLETED")),
        (J.SCHEDULED, J.FAILED, {}, Fired(JOB_STATE_CHANGE, "FAILED")),
        (J.RUNNING, J.CANCELLED, {}, Fired(JOB_STATE_CHANGE, "CANCELLED")),
        (J.PENDING, J.CANCELLED, {}, Fired(JOB_STATE_CHANGE, "CANCELLED")),
        (J.FAILED, J.RUNNING, {}, Fired(JOB_STATE_CHANGE, "RESTART")),
        (J.CANCELLED, J.RUNNING, {}, Fired(JOB_STATE_CHANGE, "RESTART")),
        (J.RUNNING, J.RUNNING, {"progress": 50.0, "position": 2}, Fired(JOB_PROGRESS)),
        (J.RUNNING, J.RUNNING, {"context": {}}, None),
    ],
)
def test_job_changes_fire(old: JobState | None, new: JobState, changes: dict[str, Any], fired: Fired | None) -> None:
    assert job_fired(old, new, changes) == fired


def _task(**spec: Any) -> Task:
    return Task(job_id="j" * 32, position=1, name="t", spec={"name": "t", **spec})


@pytest.mark.parametrize(
    ("task", "old", "new", "changes", "event"),
    [
        (_task(), None, T.PENDING, {}, None),
        (_task(), None, T.CREATED, {}, None),
        (_task(), None, T.FAILED, {}, TASK_STATE_CHANGE),  # created FAILED: its templates did not evaluate
        (_task(), T.PENDING, T.SCHEDULED, {}, TASK_STATE_CHANGE),
        (_task(), T.PENDING, T.SKIPPED, {}, TASK_STATE_CHANGE),
        (_task(), T.SCHEDULED, T.RUNNING, {"node_id": "n"}, TASK_STATE_CHANGE),
        (_task(), T.RUNNING, T.COMPLETED, {"result": "x"}, TASK_STATE_CHANGE),
        (_task(), T.RUNNING, T.FAILED, {"error": "x"}, TASK_STATE_CHANGE),
        (_task(), T.RUNNING, T.CANCELLED, {}, None),
        (_task(), T.RUNNING, T.SCHEDULED, {"redelivered": 1}, TASK_STATE_CHANGE),  # redelivered after a restart
        (_task(parallel={"tasks": []}), T.PENDING, T.RUNNING, {}, TASK_STATE_CHANGE),
        (_task(parallel={"tasks": []}), T.RUNNING, T.COMPLETED, {}, None),  # completes through its children
        (_task(each={"list": "[]"}), T.RUNNING, T.COMPLETED, {}, None),
        (_task(subjob={"name": "s"}), T.RUNNING, T.COMPLETED, {}, None),
        (_task(subjob={"name": "s", "detached": True}), T.PENDING, T.COMPLETED, {}, TASK_STATE_CHANGE),
        (_task(parallel={"tasks": []}), T.RUNNING, T.FAILED, {}, TASK_STATE_CHANGE),
        (_task(), T.RUNNING, T.RUNNING, {"progress": 12.5}, TASK_PROGRESS),
        (_task(), T.RUNNING, T.RUNNING, {"result": "x"}, None),
    ],
)
def test_task_changes_fire(
    task: Task, old: TaskState | None, new: TaskState, changes: dict[str, Any], event: str | None
) -> None:
    task.state = new
    fired = task_fired(task, old, new, changes)
    assert (fired.event if fired else None) == event


def test_an_empty_event_is_job_state_change_and_unknown_ones_never_match() -> None:
    assert events.hook_event({"url": "u"}) == JOB_STATE_CHANGE
    assert events.hook_event({"url": "u", "event": ""}) == JOB_STATE_CHANGE
    assert events.hook_event({"url": "u", "event": "none.such"}) not in events.EVENTS


def _job() -> Job:
    return Job(name="nightly", state=JobState.COMPLETED, inputs={"env": "prod"}, task_count=2, position=3)


def test_if_sees_tork_go_names_and_json_names() -> None:
    task = _task(var="out", tags=["a"])
    task.state, task.result = TaskState.COMPLETED, "42"
    context = {"job": events.job_view(_job()), "task": events.task_view(task)}
    for condition in (
        "job.State == 'COMPLETED'",
        "{{ job.State == 'COMPLETED' }}",
        "job.state == 'COMPLETED'",
        "job.Inputs.env == 'prod' && job.TaskCount == 2",
        "job.Position == 3 and job.Progress == 0",
        "job.Error == '' and job.Result == ''",  # empty fields read as ""
        "task.State == 'COMPLETED' and task.Result == '42' and task.Var == 'out' and task.var == 'out'",
        "task.JobID == task.jobId and task.ID != job.ID",
    ):
        assert condition_holds(condition, context), condition
    assert not condition_holds("job.State == 'FAILED'", context)
    assert condition_holds("", context) and condition_holds(None, context)


def test_if_reports_the_restart_state() -> None:
    assert condition_holds("job.State == 'RESTART'", {"job": events.job_view(_job(), "RESTART")})


@pytest.mark.parametrize("condition", ["job.Name", "1", "'true'", "job.State", "nope == 1", "task.State == 'X'"])
def test_a_non_boolean_or_broken_if_is_an_error_that_skips(condition: str) -> None:
    with pytest.raises(ExpressionError):
        condition_holds(condition, {"job": events.job_view(_job())})


def test_task_summary_has_tork_shape() -> None:
    task = _task(description="d", var="v", tags=["x"], env={"SECRET": "s"}, image="busybox")
    task.state, task.result = TaskState.COMPLETED, "r"
    summary = events.task_summary(task)
    assert set(summary) == {"id", "jobId", "position", "name", "description", "state", "createdAt", "result"} | {
        "var",
        "tags",
    }
    assert summary["state"] == "COMPLETED" and summary["jobId"] == task.job_id
    assert "env" not in summary and "image" not in summary


def test_job_summary_reports_a_given_state() -> None:
    assert events.job_summary(_job(), "RESTART")["state"] == "RESTART"
    assert events.job_summary(_job())["position"] == 3


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"1"}'
    expected = hmac.new(b"k3y", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("k3y", "1700000000", body) == f"sha256={expected}"
    headers = signed_headers("k3y", 1700000000, body)
    assert headers == {"X-Tork-Timestamp": "1700000000", "X-Tork-Signature": f"sha256={expected}"}
    assert signature("other", "1700000000", body) != headers["X-Tork-Signature"]
    assert signature("k3y", "1700000001", body) != headers["X-Tork-Signature"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/x", "must be an http or https URL"),
        ("file:///etc/passwd", "must be an http or https URL"),
        ("example.com/hook", "must be an http or https URL"),
        ("http:///hook", "must name a host"),
        ("http://example.com:99999/", "is not a valid URL"),
        ("http://exa mple.com/", "must be a URL without whitespace or control characters"),
        ("http://[::1/", "is not a valid URL"),
        ("https://example.com/hook?x=1", None),
        ("http://10.0.0.1:8080/", None),
    ],
)
def test_url_shape_is_checked_whatever_the_allow_list(url: str, problem: str | None) -> None:
    assert TargetPolicy().submit_problem(url) == problem


def test_the_allow_list_at_submit() -> None:
    policy = TargetPolicy.parse(["hooks.example.com", "*.corp.example", "127.0.0.0/8", "fd00::/8"])
    assert policy.submit_problem("https://hooks.example.com/x") is None
    assert policy.submit_problem("https://HOOKS.example.com./x") is None
    assert policy.submit_problem("https://a.b.corp.example/x") is None
    assert policy.submit_problem("http://127.0.0.5:9/") is None
    assert policy.submit_problem("http://[fd00::1]/") is None
    assert policy.submit_problem("http://10.1.2.3/") == "is not allowed: 10.1.2.3 is not in webhooks.allow"
    assert policy.submit_problem("http://[::1]/") == "is not allowed: ::1 is not in webhooks.allow"
    # A name not listed may still resolve into a listed network: that is checked when the call is made.
    assert policy.submit_problem("http://elsewhere.example/") is None
    assert policy.submit_problem("http://corp.example/") is None  # *.corp.example is sub-domains only
    names_only = TargetPolicy.parse(["hooks.example.com"])
    assert names_only.submit_problem("http://elsewhere.example/") == (
        "is not allowed: elsewhere.example is not in webhooks.allow"
    )
    assert names_only.submit_problem("http://127.0.0.1/") is not None


def test_the_allow_list_at_send_picks_a_checked_address() -> None:
    policy = TargetPolicy.parse(["127.0.0.0/8"])
    assert policy.pick_address("localhost", ["::1", "127.0.0.1"]) == "127.0.0.1"
    with pytest.raises(TargetRefused, match=r"resolves to no address in webhooks\.allow"):
        policy.pick_address("evil.example", ["10.0.0.1", "169.254.169.254"])


@pytest.mark.parametrize("entry", ["not a host", "a..b", "http://x/", "/8"])
def test_a_bad_allow_entry_stops_the_engine(entry: str) -> None:
    with pytest.raises(BadRequest, match=r"webhooks\.allow"):
        load_settings({"TORK_WEBHOOKS_ALLOW": entry}, config_file=None)


def test_webhook_settings_from_env() -> None:
    settings = load_settings(
        {
            "TORK_WEBHOOKS_SECRET": "s3cret",
            "TORK_WEBHOOKS_ALLOW": "hooks.example.com, 10.0.0.0/8",
            "TORK_WEBHOOKS_CONCURRENCY": "3",
            "TORK_WEBHOOKS_RETRY_DELAY": "250ms",
            "TORK_WEBHOOKS_ATTEMPTS": "2",
        }
    ).webhooks
    assert (settings.concurrency, settings.attempts, settings.delay_seconds(3)) == (3, 2, 0.75)
    assert settings.policy.names == ("hooks.example.com",) and len(settings.policy.networks) == 1
    assert "s3cret" not in repr(settings)
    with pytest.raises(BadRequest, match=r"webhooks\.concurrency"):
        load_settings({"TORK_WEBHOOKS_CONCURRENCY": "0"})
    with pytest.raises(BadRequest, match=r"webhooks\.retry\.delay"):
        load_settings({"TORK_WEBHOOKS_RETRY_DELAY": "soon"})
