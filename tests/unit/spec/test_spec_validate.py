"""Every submit-time rule of SPEC §1.3: a bad document fails with a line naming the field path and rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tork_ray.errors import BadRequest, ValidationFailed
from tork_ray.spec import JobInput, parse_job, parse_scheduled_job, validate_job

Doc = dict[str, Any]


def job(**fields: Any) -> Doc:
    return {"name": "j", "tasks": [{"name": "t", "image": "alpine"}], **fields}


def task(**fields: Any) -> Doc:
    """A job whose only task is `{"name": "t", **fields}`."""
    return {"name": "j", "tasks": [{"name": "t", **fields}]}


def problems(doc: Doc, *, as_yaml: bool = False) -> list[str]:
    body = yaml.safe_dump(doc) if as_yaml else json.dumps(doc)
    with pytest.raises(ValidationFailed) as info:
        parse_job(body.encode(), "text/yaml" if as_yaml else "application/json")
    return info.value.problems


def accepted(doc: Doc) -> JobInput:
    return parse_job(json.dumps(doc).encode(), "application/json")


LONG = "x" * 257
CASES: list[tuple[str, Doc, list[str]]] = [
    # names
    ("job name missing", {"tasks": [{"name": "t"}]}, ["name is required"]),
    ("job name empty", job(name=""), ["name is required"]),
    ("job name too long", job(name=LONG), ["name must be at most 256 characters"]),
    ("task name missing", {"name": "j", "tasks": [{"image": "alpine"}]}, ["tasks[0].name is required"]),
    ("task name too long", task(name=LONG), ["tasks[0].name must be at most 256 characters"]),
    ("pre name", task(pre=[{"image": "a"}]), ["tasks[0].pre[0].name is required"]),
    ("post name", task(post=[{"name": "ok"}, {"run": "x"}]), ["tasks[0].post[1].name is required"]),
    ("sidecar name", task(sidecars=[{"image": "a"}]), ["tasks[0].sidecars[0].name is required"]),
    ("subjob name", task(subjob={"tasks": [{"name": "x"}]}), ["tasks[0].subjob.name is required"]),
    # tasks lists
    ("job tasks missing", {"name": "j"}, ["tasks is required"]),
    ("job tasks empty", job(tasks=[]), ["tasks must contain at least 1 item"]),
    ("parallel tasks missing", task(parallel={}), ["tasks[0].parallel.tasks is required"]),
    ("parallel tasks empty", task(parallel={"tasks": []}), ["tasks[0].parallel.tasks must contain at least 1 item"]),
    ("parallel child", task(parallel={"tasks": [{"image": "a"}]}), ["tasks[0].parallel.tasks[0].name is required"]),
    ("subjob tasks missing", task(subjob={"name": "s"}), ["tasks[0].subjob.tasks is required"]),
    (
        "subjob tasks empty",
        task(subjob={"name": "s", "tasks": []}),
        ["tasks[0].subjob.tasks must contain at least 1 item"],
    ),
    # each
    ("each list missing", task(each={"task": {"name": "c"}}), ["tasks[0].each.list is required"]),
    ("each list empty", task(each={"list": "", "task": {"name": "c"}}), ["tasks[0].each.list is required"]),
    ("each task missing", task(each={"list": "{{ [1] }}"}), ["tasks[0].each.task is required"]),
    ("each task name", task(each={"list": "[1]", "task": {"image": "a"}}), ["tasks[0].each.task.name is required"]),
    (
        "each concurrency negative",
        task(each={"list": "[1]", "concurrency": -1, "task": {"name": "c"}}),
        ["tasks[0].each.concurrency must be between 0 and 99999"],
    ),
    (
        "each concurrency too big",
        task(each={"list": "[1]", "concurrency": 100000, "task": {"name": "c"}}),
        ["tasks[0].each.concurrency must be between 0 and 99999"],
    ),
    # retry
    ("retry limit 0", task(retry={"limit": 0}), ["tasks[0].retry.limit must be between 1 and 10"]),
    ("retry limit 11", task(retry={"limit": 11}), ["tasks[0].retry.limit must be between 1 and 10"]),
    ("retry limit missing", task(retry={}), ["tasks[0].retry.limit is required"]),
    ("defaults retry", job(defaults={"retry": {"limit": 0}}), ["defaults.retry.limit must be between 1 and 10"]),
    (
        "retry initialDelay",
        task(retry={"limit": 1, "initialDelay": "soon"}),
        ['tasks[0].retry.initialDelay is not a valid duration: invalid duration "soon"'],
    ),
    (
        "retry initialDelay negative",
        task(retry={"limit": 1, "initialDelay": "-1s"}),
        ["tasks[0].retry.initialDelay must not be negative"],
    ),
    (
        "retry scalingFactor",
        task(retry={"limit": 1, "scalingFactor": 0.5}),
        ["tasks[0].retry.scalingFactor must be at least 1"],
    ),
    # priority, lengths
    ("priority 10", task(priority=10), ["tasks[0].priority must be between 0 and 9"]),
    ("priority -1", task(priority=-1), ["tasks[0].priority must be between 0 and 9"]),
    ("defaults priority", job(defaults={"priority": 10}), ["defaults.priority must be between 0 and 9"]),
    ("var too long", task(var="v" * 65), ["tasks[0].var must be at most 64 characters"]),
    ("workdir too long", task(workdir="/" + "w" * 256), ["tasks[0].workdir must be at most 256 characters"]),
    ("image too long", task(image=LONG), ["tasks[0].image must be at most 256 characters"]),
    ("queue too long", task(queue=LONG), ["tasks[0].queue must be at most 256 characters"]),
    # durations
    ("task timeout", task(timeout="10"), ['tasks[0].timeout is not a valid duration: missing unit in duration "10"']),
    ("task timeout zero", task(timeout="0s"), ["tasks[0].timeout must be a positive duration"]),
    ("task timeout negative", task(timeout="-5m"), ["tasks[0].timeout must be a positive duration"]),
    (
        "defaults timeout",
        job(defaults={"timeout": "1 day"}),
        ['defaults.timeout is not a valid duration: unknown unit " day" in duration "1 day"'],
    ),
    (
        "autoDelete after",
        job(autoDelete={"after": "1d"}),
        ['autoDelete.after is not a valid duration: unknown unit "d" in duration "1d"'],
    ),
    ("wait timeout missing", job(wait={}), ["wait.timeout is required"]),
    ("wait timeout empty", job(wait={"timeout": ""}), ["wait.timeout is required"]),
    ("wait timeout bad", job(wait={"timeout": "x"}), ['wait.timeout is not a valid duration: invalid duration "x"']),
    # queues
    ("queue x-", task(queue="x-node1"), ["tasks[0].queue must not start with x- (reserved for node queues)"]),
    ("queue coordinator", task(queue="jobs"), ["tasks[0].queue must not be the coordinator queue 'jobs'"]),
    (
        "defaults queue",
        job(defaults={"queue": "pending"}),
        ["defaults.queue must not be the coordinator queue 'pending'"],
    ),
    # webhooks
    ("webhook url", job(webhooks=[{"url": ""}]), ["webhooks[0].url is required"]),
    ("webhook url missing", job(webhooks=[{"event": "job.StateChange"}]), ["webhooks[0].url is required"]),
    (
        "subjob webhook url",
        task(subjob={"name": "s", "tasks": [{"name": "c"}], "webhooks": [{"url": ""}]}),
        ["tasks[0].subjob.webhooks[0].url is required"],
    ),
    # sidecar probe
    (
        "probe path",
        task(sidecars=[{"name": "s", "probe": {"port": 80}}]),
        ["tasks[0].sidecars[0].probe.path is required"],
    ),
    (
        "probe path too long",
        task(sidecars=[{"name": "s", "probe": {"path": "/" + LONG, "port": 80}}]),
        ["tasks[0].sidecars[0].probe.path must be at most 256 characters"],
    ),
    (
        "probe port 0",
        task(sidecars=[{"name": "s", "probe": {"path": "/", "port": 0}}]),
        ["tasks[0].sidecars[0].probe.port must be between 1 and 65535"],
    ),
    (
        "probe port 65536",
        task(sidecars=[{"name": "s", "probe": {"path": "/", "port": 65536}}]),
        ["tasks[0].sidecars[0].probe.port must be between 1 and 65535"],
    ),
    (
        "probe timeout",
        task(sidecars=[{"name": "s", "probe": {"path": "/", "port": 80, "timeout": "soon"}}]),
        ['tasks[0].sidecars[0].probe.timeout is not a valid duration: invalid duration "soon"'],
    ),
    (
        "probe port missing",
        task(sidecars=[{"name": "s", "probe": {"path": "/"}}]),
        ["tasks[0].sidecars[0].probe.port is required"],
    ),
    # composite tasks
    (
        "parallel and each",
        task(parallel={"tasks": [{"name": "a"}]}, each={"list": "[1]", "task": {"name": "b"}}),
        ["tasks[0] may set only one of parallel, each or subjob"],
    ),
    (
        "each and subjob",
        task(each={"list": "[1]", "task": {"name": "b"}}, subjob={"name": "s", "tasks": [{"name": "c"}]}),
        ["tasks[0] may set only one of parallel, each or subjob"],
    ),
    (
        "composite with image and run",
        task(image="alpine", run="echo", parallel={"tasks": [{"name": "a"}]}),
        ["tasks[0] is a composite task (parallel) and must not set: image, run"],
    ),
    (
        "composite with everything",
        task(
            image="a",
            cmd=["c"],
            entrypoint=["e"],
            run="r",
            env={"A": "b"},
            queue="q",
            pre=[{"name": "p"}],
            post=[{"name": "p"}],
            mounts=[{"type": "volume", "target": "/d"}],
            retry={"limit": 1},
            limits={"cpus": "1"},
            timeout="1m",
            subjob={"name": "s", "tasks": [{"name": "c"}]},
        ),
        [
            "tasks[0] is a composite task (subjob) and must not set: image, cmd, entrypoint, run, env, queue, pre, "
            "post, mounts, retry, limits, timeout"
        ],
    ),
    # mounts
    ("mount type", task(mounts=[{"type": "", "target": "/d"}]), ["tasks[0].mounts[0].type is required"]),
    (
        "volume with source",
        task(mounts=[{"type": "volume", "source": "/s", "target": "/d"}]),
        ["tasks[0].mounts[0].source must be empty for a volume mount"],
    ),
    (
        "volume without target",
        task(mounts=[{"type": "volume"}]),
        ["tasks[0].mounts[0].target is required for a volume mount"],
    ),
    (
        "bind without source",
        task(mounts=[{"type": "bind", "target": "/d"}]),
        ["tasks[0].mounts[0].source is required for a bind mount"],
    ),
    (
        "tmpfs without target",
        task(mounts=[{"type": "tmpfs"}]),
        ["tasks[0].mounts[0].target is required for a tmpfs mount"],
    ),
    (
        "tmpfs with source",
        task(mounts=[{"type": "tmpfs", "source": "/s", "target": "/d"}]),
        ["tasks[0].mounts[0].source must be empty for a tmpfs mount"],
    ),
    (
        "bad source chars",
        task(mounts=[{"type": "bind", "source": "/tmp/$(rm)", "target": "/d"}]),
        ["tasks[0].mounts[0].source may only contain letters, digits, space and - / . _ ="],
    ),
    (
        "bad target chars",
        task(mounts=[{"type": "volume", "target": "/data;x"}]),
        ["tasks[0].mounts[0].target may only contain letters, digits, space and - / . _ ="],
    ),
    (
        "target /tork",
        task(mounts=[{"type": "volume", "target": "/tork"}]),
        ["tasks[0].mounts[0].target must not be /tork"],
    ),
    (
        "target /tork/",
        task(mounts=[{"type": "volume", "target": "/tork/"}]),
        ["tasks[0].mounts[0].target must not be /tork"],
    ),
    (
        "target under /tork",
        task(mounts=[{"type": "tmpfs", "target": "/tork/stdout"}]),
        ["tasks[0].mounts[0].target must not be under /tork"],
    ),
    (
        "target sneaks into /tork",
        task(mounts=[{"type": "volume", "target": "/data/../tork"}]),
        ["tasks[0].mounts[0].target must not be /tork"],
    ),
    # limits
    (
        "limits cpus",
        task(limits={"cpus": "half"}),
        ["tasks[0].limits.cpus is not a valid CPU count: failed to parse half as a rational number"],
    ),
    (
        "limits cpus zero",
        task(limits={"cpus": "0"}),
        ["tasks[0].limits.cpus is not a valid CPU count: value 0 must be greater than 0"],
    ),
    (
        "limits memory",
        task(limits={"memory": "lots"}),
        ["tasks[0].limits.memory is not a valid memory size: invalid size: 'lots'"],
    ),
    (
        "defaults limits",
        job(defaults={"limits": {"cpus": "1.0000000001", "memory": "1x"}}),
        [
            "defaults.limits.cpus is not a valid CPU count: "
            "value 1.0000000001 is too precise (at most 9 decimal places)",
            "defaults.limits.memory is not a valid memory size: invalid size: '1x'",
        ],
    ),
    # permissions
    ("permission neither", job(permissions=[{}]), ["permissions[0] must set exactly one of user or role"]),
    (
        "permission both",
        job(permissions=[{"user": "a"}, {"user": "a", "role": "b"}]),
        ["permissions[1] must set exactly one of user or role"],
    ),
]


@pytest.mark.parametrize(("doc", "expected"), [(d, e) for _, d, e in CASES], ids=[c[0] for c in CASES])
def test_rule(doc: Doc, expected: list[str]) -> None:
    assert problems(doc) == expected


@pytest.mark.parametrize(("doc", "expected"), [(d, e) for _, d, e in CASES[:12]], ids=[c[0] for c in CASES[:12]])
def test_rule_in_yaml(doc: Doc, expected: list[str]) -> None:
    assert problems(doc, as_yaml=True) == expected


def test_rules_recurse_into_nested_composites() -> None:
    nested = task(
        each={
            "list": "[1]",
            "task": {"name": "e", "parallel": {"tasks": [{"name": "p", "priority": 12, "pre": [{}]}]}},
        }
    )
    assert problems(nested) == [
        "tasks[0].each.task.parallel.tasks[0].priority must be between 0 and 9",
        "tasks[0].each.task.parallel.tasks[0].pre[0].name is required",
    ]


def test_all_problems_come_back_together() -> None:
    doc = {"tasks": [{"name": "a", "retry": {"limit": 0}}, {"priority": 42}], "wait": {"timeout": "x"}}
    assert problems(doc) == [
        "name is required",
        "tasks[0].retry.limit must be between 1 and 10",
        "tasks[1].name is required",
        "tasks[1].priority must be between 0 and 9",
        'wait.timeout is not a valid duration: invalid duration "x"',
    ]


def test_validation_failed_is_a_bad_request_with_one_line_per_problem() -> None:
    with pytest.raises(BadRequest) as info:
        parse_job(json.dumps({"tasks": []}).encode(), "application/json")
    assert info.value.message == "name is required\ntasks must contain at least 1 item"


def test_subjob_tasks_are_not_validated_individually() -> None:
    accepted(task(subjob={"name": "s", "tasks": [{"priority": 42}]}))


def test_valid_edges_are_accepted() -> None:
    accepted(task(retry={"limit": 10}, priority=9, var="v" * 64, queue="default", timeout="1h"))
    accepted(task(retry={"limit": 1, "initialDelay": "0s", "scalingFactor": 1}, priority=0, limits={"cpus": "0.5"}))
    accepted(job(defaults={"retry": {"limit": 1}, "queue": "other", "priority": 0}, autoDelete={"after": "0s"}))
    accepted(task(mounts=[{"type": "custom"}, {"type": "bind", "source": "/a b/c_d=e.f-g", "target": "/torked"}]))
    accepted(job(permissions=[{"user": "alice"}, {"role": "admins"}]))


def test_validate_job_directly_returns_problems() -> None:
    good = JobInput.model_validate({"name": "j", "tasks": [{"name": "t"}]})
    assert validate_job(good) == []
    bad = JobInput.model_validate({"tasks": [{"name": "t", "priority": 11}]})
    assert validate_job(bad) == ["name is required", "tasks[0].priority must be between 0 and 9"]


def scheduled(doc: Doc) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_scheduled_job(json.dumps(doc).encode(), "application/json")
    return info.value.problems


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (None, "schedule is required"),
        ({}, "schedule.cron is required"),
        ({"cron": ""}, "schedule.cron is required"),
        ({"cron": "0 0 0 * * *"}, "schedule.cron is not a valid cron expression: expected exactly 5 fields"),
        ({"cron": "@reboot"}, "schedule.cron is not a valid cron expression: unrecognized descriptor '@reboot'"),
        ({"cron": "61 * * * *"}, "schedule.cron is not a valid cron expression: minute: 61 is out of range 0-59"),
    ],
)
def test_scheduled_job_cron_rules(schedule: Doc | None, expected: str) -> None:
    doc = job() if schedule is None else job(schedule=schedule)
    found = scheduled(doc)
    assert len(found) == 1 and found[0].startswith(expected)


def test_scheduled_job_runs_the_job_rules_and_has_no_wait() -> None:
    assert scheduled({"tasks": [{"name": "t"}], "schedule": {"cron": "@daily"}}) == ["name is required"]
    with pytest.raises(BadRequest, match="wait: unknown field"):
        parse_scheduled_job(
            json.dumps(job(schedule={"cron": "@daily"}, wait={"timeout": "1m"})).encode(), "application/json"
        )


def test_yaml_nulls_in_required_fields_read_as_missing() -> None:
    body = b"name:\ntasks:\n  - name: ~\n    retry: {}\nwebhooks:\n  - url:\n"
    with pytest.raises(ValidationFailed) as info:
        parse_job(body, "text/yaml")
    assert info.value.problems == [
        "name is required",
        "tasks[0].name is required",
        "tasks[0].retry.limit is required",
        "webhooks[0].url is required",
    ]


def test_required_fields_keep_their_types_after_validation() -> None:
    job = accepted(job_doc := task(retry={"limit": 2}))
    assert isinstance(job.name, str) and isinstance(job.tasks, list)
    assert job.tasks[0].retry is not None and job.tasks[0].retry.limit == 2
    assert job_doc["tasks"][0]["name"] == job.tasks[0].name
