"""Pure parts of the coordinator: job defaults, the retry backoff, the worker's run request."""

from __future__ import annotations

import json

import pytest

from tork_ray.coordinator.request import MAX_RETRY_DELAY, apply_defaults, build_request, retry_delay
from tork_ray.errors import BadRequest
from tork_ray.spec.parse import parse_job

DEFAULTS = {
    "retry": {"limit": 2},
    "limits": {"cpus": "0.5", "memory": "64m"},
    "timeout": "30s",
    "queue": "fast",
    "priority": 3,
}


def test_defaults_fill_only_empty_fields() -> None:
    task = apply_defaults({"name": "t", "limits": {"memory": "1g"}, "priority": 7}, DEFAULTS)
    assert task["retry"] == {"limit": 2}
    assert task["limits"] == {"cpus": "0.5", "memory": "1g"}
    assert (task["timeout"], task["queue"], task["priority"]) == ("30s", "fast", 7)


def test_defaults_skip_composites_and_keep_a_task_retry() -> None:
    parallel = {"name": "p", "parallel": {"tasks": []}}
    assert apply_defaults(parallel, DEFAULTS) == parallel
    assert apply_defaults({"name": "t", "retry": {"limit": 5}}, DEFAULTS)["retry"] == {"limit": 5}


def test_defaults_do_not_touch_the_definition() -> None:
    definition = {"name": "t", "limits": {"cpus": "1"}}
    apply_defaults(definition, DEFAULTS)
    assert definition == {"name": "t", "limits": {"cpus": "1"}}


def test_retry_is_immediate_unless_a_backoff_is_set() -> None:
    assert retry_delay(None, 1) == 0
    assert retry_delay({"limit": 3}, 2) == 0
    backoff = {"limit": 3, "initialDelay": "500ms", "scalingFactor": 3}
    assert [retry_delay(backoff, n) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]
    assert retry_delay({"limit": 2, "initialDelay": "2s"}, 2) == 2.0


def test_build_request_converts_units() -> None:
    spec = {
        "name": "t",
        "image": "alpine",
        "run": "true",
        "timeout": "1m30s",
        "limits": {"cpus": "0.5", "memory": "64m"},
    }
    request = build_request("task", "job", spec, "scope")
    assert request.timeout_seconds == 90
    assert request.cpus_nano == 500_000_000
    assert request.memory_bytes == 64 * 1024 * 1024
    assert request.main.run == "true" and request.scope == "scope"


def test_a_backoff_never_overflows() -> None:
    # float ** int past 1e308 raises OverflowError: inside an event that used to leave the job RUNNING.
    for factor in (1e300, float("inf"), float("nan")):
        assert retry_delay({"limit": 5, "initialDelay": "1s", "scalingFactor": factor}, 3) == MAX_RETRY_DELAY


def test_defaults_give_every_regular_task_its_redelivery_limit() -> None:
    assert apply_defaults({"name": "t", "run": "x"}, {"redeliveries": 0})["redeliveries"] == 0
    assert apply_defaults({"name": "t", "run": "x", "redeliveries": 3}, {"redeliveries": 0})["redeliveries"] == 3


def test_a_redelivery_limit_is_bounded_and_not_for_composites() -> None:
    def problems(task: dict[str, object], **job: object) -> str:
        with pytest.raises(BadRequest) as caught:
            parse_job(json.dumps({"name": "j", "tasks": [task], **job}).encode(), "application/json")
        return caught.value.message

    assert "tasks[0].redeliveries" in problems({"name": "t", "run": "x", "redeliveries": 11})
    assert "defaults.redeliveries" in problems({"name": "t", "run": "x"}, defaults={"redeliveries": -1})
    each = {"name": "e", "redeliveries": 1, "each": {"list": "{{ [1] }}", "task": {"name": "c", "run": "x"}}}
    assert "redeliveries" in problems(each)
