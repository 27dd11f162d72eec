"""Coordinator calls that Ray may retry, and submits a client may repeat, apply once (request ids); waiting
submits leave room for every other call."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import ray

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tork_ray.coordinator.actor import Coordinator
from tork_ray.errors import Unavailable
from tork_ray.spec.parse import parse_job
from tork_ray.store.store import Store, open_store


def napper(name: str) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": "nap", "image": TEST_IMAGE, "run": "sleep 30"}]}


def jobs_named(store: Store, name: str) -> int:
    return sum(1 for job in store.list_jobs(1, 20, None)[0] if job.name == name)


def test_the_same_accept_twice_makes_one_job_and_a_retried_cancel_answers_ok(live_engine: LiveEngine) -> None:
    name = f"accepted once {uuid.uuid4().hex[:6]}"
    spec = parse_job(json.dumps(napper(name)).encode(), "application/json")
    request_id = f"call:{uuid.uuid4().hex}"
    coordinator = live_engine.coordinator
    first = ray.get(coordinator.accept.remote(spec, request_id=request_id))
    again = ray.get(coordinator.accept.remote(spec, request_id=request_id))
    assert again["id"] == first["id"]
    assert jobs_named(live_engine.store, name) == 1

    live_engine.wait_for(first["id"], "SCHEDULED", "RUNNING")
    cancel_id = f"call:{uuid.uuid4().hex}"
    ray.get(coordinator.cancel_job.remote(first["id"], request_id=cancel_id))
    ray.get(coordinator.cancel_job.remote(first["id"], request_id=cancel_id))  # a retry: OK, not 400
    assert live_engine.wait_for(first["id"])["state"] == "CANCELLED"

    restart_id = f"call:{uuid.uuid4().hex}"
    ray.get(coordinator.restart_job.remote(first["id"], request_id=restart_id))
    ray.get(coordinator.restart_job.remote(first["id"], request_id=restart_id))  # applied once
    live_engine.wait_for(first["id"], "RUNNING")
    live_engine.http.put(f"/jobs/{first['id']}/cancel")
    job = live_engine.wait_for(first["id"])
    assert [t["state"] for t in job["execution"]] == ["CANCELLED", "CANCELLED"]  # one restart, one new task


def test_a_request_id_outlives_the_coordinator(live_engine: LiveEngine, tmp_path: Path) -> None:
    # Two coordinators in turn on one store: the second is the first restarted. Its queue has no node, so
    # nothing reaches Ray.
    settings = replace(live_engine.settings, data_dir=tmp_path, ray=replace(live_engine.settings.ray, namespace="i"))
    doc = {"name": "kept", "tasks": [{"name": "t", "image": TEST_IMAGE, "run": "true", "queue": "no-node-here"}]}
    spec = parse_job(json.dumps(doc).encode(), "application/json")

    async def accept() -> str:
        coordinator = Coordinator(settings)
        summary = await coordinator.accept(spec, request_id="key:guest:same")
        await coordinator.shutdown()
        return str(summary["id"])

    assert asyncio.run(accept()) == asyncio.run(accept())
    assert open_store(settings).list_jobs(1, 10)[1] == 1


def test_idempotency_key_over_http(live_engine: LiveEngine) -> None:
    key = uuid.uuid4().hex
    body = json.dumps(napper(f"keyed {key[:6]}"))
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    first = live_engine.http.post("/jobs", content=body, headers=headers)
    again = live_engine.http.post("/jobs", content=body, headers=headers)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert jobs_named(live_engine.store, f"keyed {key[:6]}") == 1

    other = live_engine.http.post("/jobs", content=json.dumps(napper("another body")), headers=headers)
    assert other.status_code == 409
    assert other.json() == {"message": "Idempotency-Key was already used for a different request"}

    too_long = live_engine.http.post("/jobs", content=body, headers={**headers, "Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()["message"]

    # Without the header every submit is a new job, as before.
    plain = {"Content-Type": "application/json"}
    ids = {live_engine.http.post("/jobs", content=body, headers=plain).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and first.json()["id"] not in ids
    for job_id in [first.json()["id"], *ids]:
        live_engine.http.put(f"/jobs/{job_id}/cancel")


def test_idempotency_key_with_wait_gives_the_same_finished_job(live_engine: LiveEngine) -> None:
    doc = {"name": "waited once", "tasks": [{"name": "t", "if": "false"}], "wait": {"timeout": "30s"}}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = live_engine.http.post("/jobs", json=doc, headers=headers)
    again = live_engine.http.post("/jobs", json=doc, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["state"] == "COMPLETED" and again.json()["id"] == first.json()["id"]


def test_waiting_submits_cannot_take_every_slot_of_the_coordinator(live_engine: LiveEngine, tmp_path: Path) -> None:
    # The coordinator class itself with room for two waiting submits; its queue has no node, so they wait.
    settings = replace(live_engine.settings, data_dir=tmp_path, ray=replace(live_engine.settings.ray, namespace="w"))
    doc = {"name": "waits", "tasks": [{"name": "t", "image": TEST_IMAGE, "run": "true", "queue": "no-node-here"}]}
    spec = parse_job(json.dumps(doc).encode(), "application/json")

    async def scenario() -> tuple[str, list[Any]]:
        coordinator = Coordinator(settings, max_waiting=2)
        await coordinator.ready()
        waits = [asyncio.ensure_future(coordinator.submit_and_wait(spec, 30)) for _ in range(2)]
        while not coordinator._waiters.locked():  # yield to the loop until both hold their place
            await asyncio.sleep(0)
        try:
            await coordinator.submit_and_wait(spec, 30)
            refused = "not refused"
        except Unavailable as exc:
            refused = exc.message
        queues = await coordinator.queues()  # other calls are still served
        for job in coordinator.store.list_jobs(1, 10)[0]:
            await coordinator.cancel_job(job.id)
        answers = await asyncio.gather(*waits)
        await coordinator.shutdown()
        return refused, [queues, answers]

    refused, (queues, answers) = asyncio.run(scenario())
    assert refused == "too many submits wait (at most 2): submit without `wait`"
    assert "no-node-here" in {queue.name for queue in queues}
    assert [answer["job"]["state"] for answer in answers] == ["CANCELLED", "CANCELLED"]


def test_the_same_keyed_submit_sent_at_once_makes_one_job(live_engine: LiveEngine) -> None:
    # A client that retries before its first try answered: eight identical requests in flight together, on
    # eight connections. The coordinator handles them one at a time, so every one finds the first one's job.
    key = uuid.uuid4().hex
    name = f"raced {key[:6]}"
    body = json.dumps(napper(name))
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    url = str(live_engine.http.base_url)
    start = threading.Barrier(8)

    def submit() -> Any:
        with httpx.Client(base_url=url, timeout=30) as http:
            start.wait()
            return http.post("/jobs", content=body, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: submit(), range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert jobs_named(live_engine.store, name) == 1
    live_engine.http.put(f"/jobs/{answers[0].json()['id']}/cancel")
