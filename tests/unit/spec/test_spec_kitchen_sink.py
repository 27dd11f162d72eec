"""A document that sets every field parses, and its task definitions round-trip through to_dict."""

from __future__ import annotations

import json

from tork_ray.spec import JobInput, ScheduledJobInput, TaskInput, parse_job, parse_scheduled_job, to_dict

KITCHEN_SINK = b"""\
name: kitchen sink
description: every field there is
tags: [a, b]
inputs: {greeting: hello, count: 3}
secrets: {token: s3cret}
output: "{{ tasks.first }}"
defaults:
  retry: {limit: 2, initialDelay: 1s, scalingFactor: 2}
  limits: {cpus: "0.5", memory: 256m}
  timeout: 5m
  queue: default
  priority: 3
webhooks:
  - url: http://example.com/hook
    headers: {Authorization: "Bearer {{ secrets.token }}"}
    event: job.StateChange
    if: "job.State == 'COMPLETED'"
permissions:
  - user: alice
  - role: admins
autoDelete: {after: 24h}
wait: {timeout: 1m}
tasks:
  - name: first
    description: the main task
    tags: [main]
    image: alpine:3
    run: echo -n hi > $TORK_OUTPUT
    cmd: [sh, -c, /tork/entrypoint]
    entrypoint: [sh]
    env: {GREETING: "{{ inputs.greeting }}", N: 1}
    files: {script.py: "print(1)"}
    workdir: /work
    queue: fast
    var: first
    if: "{{ inputs.count != '0' }}"
    timeout: 10m
    retry: {limit: 3, initialDelay: 500ms, scalingFactor: 1.5}
    limits: {cpus: "1", memory: 1g}
    priority: 9
    pre:
      - name: setup
        description: before
        cmd: [echo, pre]
        entrypoint: [sh, -c]
        run: echo pre
        image: alpine:3
        registry: {username: u, password: p}
        env: {A: b}
        files: {f.txt: x}
        timeout: 1m
    post:
      - name: teardown
        image: alpine:3
        run: echo post
    sidecars:
      - name: db
        image: postgres:16
        env: {POSTGRES_PASSWORD: pw}
        probe: {path: /health, port: 5432, timeout: 30s}
    mounts:
      - {type: volume, target: /data, opts: {size: 10m}}
      - {type: bind, source: /tmp/in, target: /in}
      - {type: tmpfs, target: /scratch}
    networks: [bridge]
    registry: {username: me, password: pw}
    gpus: all
  - name: fan out
    parallel:
      tasks:
        - {name: p1, image: alpine, run: echo 1}
        - {name: p2, image: alpine, run: echo 2}
  - name: loop
    each:
      list: "{{ sequence(1, 5) }}"
      var: num
      concurrency: 2
      task:
        name: "item {{ num.value }}"
        image: alpine
        run: echo $N
        env: {N: "{{ num.value }}"}
  - name: child
    subjob:
      id: ignored
      name: the child
      description: a sub-job
      tasks:
        - {name: inner, image: alpine, run: echo inner}
      inputs: {x: "1"}
      secrets: {y: "2"}
      autoDelete: {after: 1h}
      output: "{{ tasks.inner }}"
      detached: true
      webhooks:
        - {url: "http://example.com/{{ inputs.x }}", headers: {h: v}, event: job.StateChange, if: "true"}
"""


def test_kitchen_sink_parses() -> None:
    job = parse_job(KITCHEN_SINK, "text/yaml")
    assert job.tasks is not None and len(job.tasks) == 4
    first = job.tasks[0]
    assert first.retry is not None and first.retry.scalingFactor == 1.5
    assert first.env == {"GREETING": "{{ inputs.greeting }}", "N": "1"}
    assert first.sidecars is not None and first.sidecars[0].probe is not None
    assert first.sidecars[0].probe.port == 5432
    assert job.inputs == {"greeting": "hello", "count": "3"}
    assert job.tasks[3].subjob is not None and job.tasks[3].subjob.detached is True
    assert job.wait is not None and job.wait.timeout == "1m"


def test_kitchen_sink_tasks_round_trip_through_to_dict() -> None:
    job = parse_job(KITCHEN_SINK, "text/yaml")
    assert job.tasks is not None
    for task in job.tasks:
        stored = json.loads(json.dumps(to_dict(task)))  # as the store keeps it (JSON column)
        assert TaskInput.model_validate(stored) == task
        assert to_dict(TaskInput.model_validate(stored)) == to_dict(task)


def test_kitchen_sink_job_round_trips_and_uses_camel_case() -> None:
    job = parse_job(KITCHEN_SINK, "text/yaml")
    dumped = to_dict(job)
    assert JobInput.model_validate(dumped) == job
    assert parse_job(json.dumps(dumped).encode(), "application/json") == job
    first = dumped["tasks"][0]
    assert first["if"] == "{{ inputs.count != '0' }}"
    assert first["retry"] == {"limit": 3, "initialDelay": "500ms", "scalingFactor": 1.5}
    assert dumped["autoDelete"] == {"after": "24h"}
    assert "description" not in dumped["tasks"][1]  # None fields are left out


def test_kitchen_sink_as_a_scheduled_job() -> None:
    body = KITCHEN_SINK.replace(b"wait: {timeout: 1m}\n", b"schedule: {cron: '*/5 * * * *'}\n")
    job = parse_scheduled_job(body, "text/yaml")
    assert job.schedule.cron == "*/5 * * * *"
    assert ScheduledJobInput.model_validate(to_dict(job)) == job
