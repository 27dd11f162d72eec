"""Webhooks end to end: a real receiver gets exactly the calls of a job's life (job and task events, rendered
headers, `if`, signatures checked with the README's own snippet); retries; a hanging or dead receiver changes
nothing of a job; a coordinator restart between a change and its call loses no call."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from tests.conftest import TEST_IMAGE, WEBHOOK_SECRET
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates
from tests.polling import poll_until
from tests.webhook_receiver import Receiver, receiver
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.store.webhook_outbox import outbox_rows
from tork_ray.store.webhook_tables import PENDING
from tork_ray.webhooks.config import WebhookSettings

README = Path(__file__).resolve().parents[2] / "README.md"
CANARY = "wh-canary-7d3e9a"


def readme_verifier() -> Callable[..., bool]:
    """The receiver's verification snippet exactly as README.md shows it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (snippet,) = [b for b in blocks if "def verify_tork_signature" in b]
    scope: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # our own README's code
    verify: Callable[..., bool] = scope["verify_tork_signature"]
    return verify


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def settled(engine: LiveEngine, job_id: str) -> bool:
    """Every call the job fired has been made (delivered or given up): the counts are final."""
    rows = outbox_rows(engine.store, job_id)
    return bool(rows) and all(row.state != PENDING for row in rows)


def run(engine: LiveEngine, doc: dict[str, Any], state: str = "COMPLETED") -> dict[str, Any]:
    job_id = engine.submit_json(doc)["id"]
    job = engine.wait_for(job_id, timeout=90)
    tasks = [(t["name"], t["state"], t.get("error")) for t in job["execution"]]
    assert job["state"] == state, (job.get("error"), tasks)
    return job


def step(name: str, script: str = "true", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, "run": script, **extra}


def test_a_job_life_reaches_the_receiver_exactly(live_engine: LiveEngine, hooks: Receiver) -> None:
    u = hooks.url
    doc = {
        "name": "webhook life",
        "secrets": {"token": CANARY},
        "inputs": {"who": "world"},
        "webhooks": [
            {"url": f"{u}/job", "headers": {"Authorization": "Bearer {{ secrets.token }}", "X-Who": "{{inputs.who}}"}},
            {"url": f"{u}/task", "event": "task.StateChange"},
            {"url": f"{u}/done", "event": "job.StateChange", "if": "job.State == 'COMPLETED'"},
            {"url": f"{u}/running", "if": "{{ job.state == 'RUNNING' }}"},
            {"url": f"{u}/second", "event": "task.StateChange", "if": "task.State == 'COMPLETED' && task.Name=='two'"},
            {"url": f"{u}/not-boolean", "if": "job.Name"},
            {"url": f"{u}/progress", "event": "job.Progress"},
            {"url": f"{u}/never", "event": "none.such"},
        ],
        "tasks": [
            step("first", "echo -n out $TOKEN > $TORK_OUTPUT", var="first", env={"TOKEN": "{{ secrets.token }}"}),
            step("two"),
            step("skipped", **{"if": "false"}),
        ],
    }
    job = run(live_engine, doc)
    poll_until(lambda: settled(live_engine, job["id"]), 30, "every webhook call made")

    assert [b["state"] for b in hooks.bodies("/job")] == ["PENDING", "RUNNING", "COMPLETED"]
    assert {b["id"] for b in hooks.bodies("/job")} == {job["id"]}
    for got in hooks.at("/job"):
        assert got.headers["Authorization"] == f"Bearer {CANARY}" and got.headers["X-Who"] == "world"
    assert [(b["name"], b["state"]) for b in hooks.bodies("/task")] == [
        ("first", "SCHEDULED"),
        ("first", "RUNNING"),
        ("first", "COMPLETED"),
        ("two", "SCHEDULED"),
        ("two", "RUNNING"),
        ("two", "COMPLETED"),
        ("skipped", "SKIPPED"),
    ]
    assert [b["state"] for b in hooks.bodies("/done")] == ["COMPLETED"]
    assert [b["state"] for b in hooks.bodies("/running")] == ["RUNNING"]
    assert [(b["name"], b["state"]) for b in hooks.bodies("/second")] == [("two", "COMPLETED")]
    assert [b["progress"] for b in hooks.bodies("/progress")] == [33.33, 66.67, 100]
    assert hooks.at("/not-boolean") == [] and hooks.at("/never") == []

    # Tork's summaries, redacted: the first task's result echoes the secret.
    first_done = hooks.bodies("/task")[2]
    assert first_done["result"] == "out [REDACTED]" and first_done["var"] == "first"
    assert set(first_done) >= {"id", "jobId", "position", "name", "state", "createdAt", "scheduledAt"}
    assert all(CANARY not in r.body.decode() for r in hooks.requests)
    assert hooks.bodies("/job")[-1]["taskCount"] == 3

    verify = readme_verifier()
    for got in hooks.requests:
        assert got.headers["Content-Type"] == "application/json; charset=UTF-8"
        assert verify(WEBHOOK_SECRET, got.headers, got.body), got
        assert not verify("another secret", got.headers, got.body)
    tampered = hooks.requests[0]
    assert not verify(WEBHOOK_SECRET, tampered.headers, tampered.body + b" ")
    old = {**tampered.headers, "X-Tork-Timestamp": str(int(time.time()) - 3600)}
    assert not verify(WEBHOOK_SECRET, old, tampered.body)

    # Wherever the webhook is shown, its rendered form is not: the stored headers are templates.
    shown = live_engine.http.get(f"/jobs/{job['id']}").json()
    assert shown["webhooks"][0]["headers"]["Authorization"] == "Bearer {{ secrets.token }}"


def test_a_failing_job_reports_failed_once_and_a_restart(live_engine: LiveEngine, hooks: Receiver) -> None:
    doc = {
        "name": "webhook failure",
        "webhooks": [{"url": f"{hooks.url}/job"}, {"url": f"{hooks.url}/task", "event": "task.StateChange"}],
        # Two failing children: the second failure arrives after the job has FAILED (Tork reports it again).
        "tasks": [{"name": "both fail", "parallel": {"tasks": [step("a", "exit 1"), step("b", "sleep 0.5; exit 2")]}}],
    }
    job = run(live_engine, doc, "FAILED")
    assert live_engine.http.put(f"/jobs/{job['id']}/restart").status_code == 200
    live_engine.wait_for(job["id"], "FAILED", timeout=60)
    poll_until(lambda: settled(live_engine, job["id"]) and len(hooks.at("/job")) >= 5, 30, "the calls made")
    assert [b["state"] for b in hooks.bodies("/job")] == ["PENDING", "RUNNING", "FAILED", "RESTART", "FAILED"]
    states = [(b["name"], b["state"]) for b in hooks.bodies("/task")]
    assert states.count(("both fail", "FAILED")) == 2 and ("both fail", "COMPLETED") not in states
    assert ("a", "FAILED") in states and not any(state == "CANCELLED" for _, state in states)


def test_a_sub_job_calls_its_own_webhooks(live_engine: LiveEngine, hooks: Receiver) -> None:
    doc = {
        "name": "parent",
        "secrets": {"token": CANARY},
        "tasks": [
            {
                "name": "child",
                "subjob": {
                    "name": "the child",
                    "webhooks": [{"url": f"{hooks.url}/sub", "headers": {"X-Token": "{{ secrets.token }}"}}],
                    "tasks": [step("inner")],
                },
            }
        ],
    }
    job = run(live_engine, doc)
    sub_id = job["execution"][0]["subjob"]["id"]
    poll_until(lambda: settled(live_engine, sub_id), 30, "the sub-job's calls made")
    assert [(b["name"], b["state"]) for b in hooks.bodies("/sub")] == [
        ("the child", "PENDING"),
        ("the child", "RUNNING"),
        ("the child", "COMPLETED"),
    ]
    assert {r.headers["X-Token"] for r in hooks.at("/sub")} == {CANARY}  # rendered in the parent's context
    assert CANARY not in live_engine.http.get(f"/jobs/{sub_id}").text
    assert CANARY not in live_engine.http.get(f"/jobs/{job['id']}").text


def test_a_progress_update_fires_task_and_job_progress(
    live_engine: LiveEngine, hooks: Receiver, docker_client: Any
) -> None:
    doc = {
        "name": "progress calls",
        "webhooks": [
            {"url": f"{hooks.url}/job", "event": "job.Progress"},
            {"url": f"{hooks.url}/task", "event": "task.Progress"},
        ],
        # Two top-level tasks: the first reports 50 % and waits (gated) until the call for it has arrived.
        "tasks": [step("halfway", f"echo 50 > $TORK_PROGRESS; {GATED}"), step("last")],
    }
    job_id = live_engine.submit_json(doc)["id"]
    poll_until(lambda: hooks.at("/task"), 60, "the task.Progress call")
    poll_until(lambda: open_gates(docker_client, job_id), 30, "the gate opened")
    assert live_engine.wait_for(job_id)["state"] == "COMPLETED"
    poll_until(lambda: settled(live_engine, job_id), 30, "every call made")
    assert [(b["name"], b["progress"]) for b in hooks.bodies("/task")] == [("halfway", 50)]
    # 50 % of the first of two tasks, then each top-level completion.
    assert [b["progress"] for b in hooks.bodies("/job")] == [25, 50, 100]


def test_500_then_200_is_retried(live_engine: LiveEngine, hooks: Receiver) -> None:
    hooks.plans["/flaky"] = [500, 200]
    doc = {"name": "flaky receiver", "webhooks": [{"url": f"{hooks.url}/flaky", "if": "job.State == 'COMPLETED'"}]}
    job = run(live_engine, {**doc, "tasks": [step("one")]})
    poll_until(lambda: settled(live_engine, job["id"]), 30, "the call made")
    got = hooks.at("/flaky")
    assert [g.json()["state"] for g in got] == ["COMPLETED", "COMPLETED"]
    assert got[0].headers["X-Tork-Delivery"] == got[1].headers["X-Tork-Delivery"]
    (row,) = outbox_rows(live_engine.store, job["id"])
    assert (row.state, row.attempts) == ("delivered", 2)


def test_the_sweep_prunes_made_calls(live_engine: LiveEngine, hooks: Receiver) -> None:
    doc = {"name": "pruned calls", "webhooks": [{"url": f"{hooks.url}/p"}], "tasks": [step("t")]}
    job = run(live_engine, doc)
    poll_until(lambda: settled(live_engine, job["id"]), 30, "the calls made")
    swept = ray.get(live_engine.coordinator.sweep.remote())
    assert swept["webhookCalls"] >= 3 and outbox_rows(live_engine.store, job["id"]) == []


def test_bad_webhook_urls_are_refused_at_submit(live_engine: LiveEngine) -> None:
    for url, rule in (("ftp://example.com/x", "must be an http or https URL"), ("http://", "must name a host")):
        response = live_engine.http.post("/jobs", json={"name": "x", "webhooks": [{"url": url}], "tasks": [step("t")]})
        assert response.status_code == 400 and response.json() == {"message": f"webhooks[0].url {rule}"}


def test_the_allow_list_refuses_addresses_at_submit(live_engine: LiveEngine, hooks: Receiver) -> None:
    webhooks = WebhookSettings(allow=("127.0.0.0/8", "hooks.example.com"))
    app = create_app(replace(live_engine.settings, webhooks=webhooks), live_engine.coordinator, live_engine.store)
    sub = {"name": "s", "tasks": [step("in")], "webhooks": [{"url": "http://169.254.169.254/latest"}]}
    refused = {
        "name": "refused",
        "webhooks": [{"url": "http://10.1.2.3/hook"}, {"url": f"{hooks.url}/fine"}, {"url": "http://[::1]:80/"}],
        "tasks": [{"name": "sub", "subjob": sub}],
    }
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        response = http.post("/jobs", json=refused)
        assert response.status_code == 400
        assert sorted(response.json()["message"].splitlines()) == [
            "tasks[0].subjob.webhooks[0].url is not allowed: 169.254.169.254 is not in webhooks.allow",
            "webhooks[0].url is not allowed: 10.1.2.3 is not in webhooks.allow",
            "webhooks[2].url is not allowed: ::1 is not in webhooks.allow",
        ]
        allowed = {"name": "allowed", "webhooks": [{"url": f"{hooks.url}/fine"}], "tasks": [step("t")]}
        job_id = http.post("/jobs", json=allowed).json()["id"]
    live_engine.wait_for(job_id, "COMPLETED")
    poll_until(lambda: settled(live_engine, job_id), 30, "the allowed job's calls made")
    assert [b["state"] for b in hooks.bodies("/fine")] == ["PENDING", "RUNNING", "COMPLETED"]


def test_webhook_headers_are_redacted_wherever_shown(live_engine: LiveEngine) -> None:
    headers = {"Authorization": f"Bearer {CANARY}", "X-Api-Secret": "literal-value-1", "X-T": "{{ secrets.token }}"}
    doc = {
        "name": "headers shown",
        "secrets": {"token": CANARY},
        "webhooks": [{"url": "http://127.0.0.1:9/x", "event": "none.such", "headers": headers}],
        "tasks": [step("t")],
    }
    submitted = live_engine.http.post("/jobs", json=doc)
    job = live_engine.wait_for(submitted.json()["id"])
    assert job["webhooks"][0]["headers"] == {
        "Authorization": "Bearer [REDACTED]",
        "X-Api-Secret": "[REDACTED]",
        "X-T": "{{ secrets.token }}",
    }
    listed = live_engine.http.get("/jobs", params={"q": "headers shown"}).text
    assert CANARY not in submitted.text + listed and "literal-value-1" not in submitted.text + listed


@pytest.mark.parametrize("receiver_kind", ["hanging", "down"])
def test_a_hanging_or_dead_receiver_changes_nothing_of_the_job(
    live_engine: LiveEngine, hooks: Receiver, receiver_kind: str
) -> None:
    hooks.plans["/hang"] = "hang"
    with receiver() as gone:
        dead = gone.url
    target = f"{hooks.url}/hang" if receiver_kind == "hanging" else f"{dead}/down"
    events = ("job.StateChange", "task.StateChange", "job.Progress")
    tasks = [step("one", "echo -n 1 > $TORK_OUTPUT", var="one"), step("two", "echo -n 2 > $TORK_OUTPUT")]
    base = {"name": f"{receiver_kind} receiver", "tasks": tasks, "output": "{{ tasks.one }}"}
    hooked = {**base, "webhooks": [{"url": target, "event": e} for e in events for _ in range(4)]}

    timings = {}
    for label, doc in (("without webhooks", base), ("with webhooks", hooked), ("without again", base)):
        started = time.monotonic()
        job = run(live_engine, doc)
        timings[label] = time.monotonic() - started
        assert (job["result"], [t["state"] for t in job["execution"]]) == ("1", ["COMPLETED", "COMPLETED"])
    print(f"\n{receiver_kind} receiver, job times: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    if receiver_kind == "hanging":
        assert hooks.at("/hang"), "the hanging receiver was called"
    hooks.release.set()  # let the held calls go before the receiver closes


def test_a_coordinator_restart_between_change_and_call_loses_no_call(live_engine: LiveEngine, hooks: Receiver) -> None:
    hooks.plans["/held"] = "hang"  # the first call hangs: every later one waits behind it in the outbox
    doc = {"name": "calls survive a restart", "webhooks": [{"url": f"{hooks.url}/held"}], "tasks": [step("one")]}
    job = run(live_engine, doc)
    poll_until(lambda: hooks.at("/held"), 30, "the first call to be held")
    pending = [row.event for row in outbox_rows(live_engine.store, job["id"]) if row.state == PENDING]
    assert len(pending) == 3  # the job is COMPLETED; its three calls are not made yet

    ray.kill(live_engine.coordinator, no_restart=False)  # SIGKILL: the sender dies mid-call
    poll_until(lambda: hooks.hangups, 60, "the old process gone (its held call hung up)")
    hooks.plans["/held"] = [200]
    hooks.release.set()
    poll_until(lambda: settled(live_engine, job["id"]), 60, "the calls made after the restart")
    got = hooks.at("/held")
    deliveries = list(dict.fromkeys(g.headers["X-Tork-Delivery"] for g in got))
    by_delivery = {g.headers["X-Tork-Delivery"]: g.json()["state"] for g in got}
    assert [by_delivery[d] for d in deliveries] == ["PENDING", "RUNNING", "COMPLETED"]
    # The held call never got its answer: it is made again, with the same delivery id.
    assert [g.json()["state"] for g in got] == ["PENDING", "PENDING", "RUNNING", "COMPLETED"]
    assert got[0].headers["X-Tork-Delivery"] == got[1].headers["X-Tork-Delivery"]


def test_a_scheduled_jobs_instances_call_their_webhooks_from_their_creation(
    live_engine: LiveEngine, hooks: Receiver
) -> None:
    """An instance is made by the store in the fire mark's transaction, not through the writer: its PENDING
    call is stored in that transaction too, and the rest of its life follows as for a submitted job."""
    doc = {
        "name": "scheduled webhooks",
        "schedule": {"cron": "@every 1s"},
        "webhooks": [{"url": f"{hooks.url}/scheduled"}],
        "tasks": [step("one")],
    }
    made = live_engine.http.post("/scheduled-jobs", json=doc)
    assert made.status_code == 200, made.text
    scheduled_id = made.json()["id"]
    try:
        first = poll_until(
            lambda: next(
                (
                    b
                    for b in hooks.bodies("/scheduled")
                    if b["state"] == "COMPLETED" and (b.get("schedule") or {}).get("id") == scheduled_id
                ),
                None,
            ),
            90,
            "a completed instance's call",
        )
    finally:
        assert live_engine.http.put(f"/scheduled-jobs/{scheduled_id}/pause").status_code == 200
    states = [b["state"] for b in hooks.bodies("/scheduled") if b["id"] == first["id"]]
    assert states == ["PENDING", "RUNNING", "COMPLETED"]
    live_engine.http.delete(f"/scheduled-jobs/{scheduled_id}")
