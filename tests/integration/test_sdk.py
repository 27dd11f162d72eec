"""The Python SDK against the session engine: tork_ray.submit() from a separate Ray driver with no URL, and
through a URL; every typed method of tork_ray.Client; its errors; tork_ray.AsyncClient likewise."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

import tork_ray
import tork_ray.aio
from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine, free_port
from tests.integration.auth_api import auth_api
from tests.polling import poll_until
from tork_ray import Client, JobFailed, JobInput, NotFound, WaitTimedOut

ROOT = Path(__file__).resolve().parents[2]


def doc(name: str, run: str = "echo hello", *, var: str = "out") -> str:
    return f"""
name: {name} {uuid.uuid4().hex[:6]}
tasks:
  - name: say
    var: {var}
    image: {TEST_IMAGE}
    run: |
      {run}
"""


@pytest.fixture
def client(live_engine: LiveEngine) -> Iterator[Client]:
    with Client(str(live_engine.http.base_url)) as client:
        yield client


def driver_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORK_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_a_ray_driver_submits_without_a_url(live_engine: LiveEngine) -> None:
    # A program of its own connects to the engine's cluster; tork_ray.submit() finds the API through Ray.
    answer = run_driver(ray.get_runtime_context().gcs_address, "from a driver", "from the driver")
    assert live_engine.store.get_job(answer["id"]) is not None  # the session engine ran it


def run_driver(address: str, name: str, line: str) -> dict[str, Any]:
    """tests/integration/sdk_driver.py connected to `address`: its submit(wait=True) of a job echoing `line`."""
    document = doc(name, f"echo {line} > $TORK_OUTPUT")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests/integration/sdk_driver.py"), address, document],
        env=driver_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["state"] == "COMPLETED" and answer["lines"] == [f"{line}\n"], answer
    return answer


def test_the_coordinator_tells_its_api_address(live_engine: LiveEngine) -> None:
    assert ray.get(live_engine.coordinator.api_address.remote()) == str(live_engine.http.base_url).rstrip("/")


def test_submit_through_a_url_in_every_form(live_engine: LiveEngine, tmp_path: Path) -> None:
    url = str(live_engine.http.base_url)
    job = tork_ray.submit(doc("text", "echo text > $TORK_OUTPUT"), wait=True, url=url)
    assert isinstance(job, tork_ray.Job) and job.state == tork_ray.JobState.COMPLETED
    assert job.execution[0].result == "text\n" and job.context["tasks"]["out"] == "text\n"
    path = tmp_path / "job.yaml"
    path.write_text(doc("path"))
    assert tork_ray.submit(path, wait=True, url=url).state == "COMPLETED"
    assert tork_ray.submit(str(path), wait=True, url=url).name.startswith("path ")  # type: ignore[union-attr]
    as_dict = {"name": "dict", "tasks": [{"name": "t", "image": TEST_IMAGE, "run": "true"}]}
    assert tork_ray.submit(as_dict, wait=True, url=url).state == "COMPLETED"
    typed = JobInput.model_validate(as_dict | {"name": "typed"})
    accepted = tork_ray.submit(typed, url=url)  # no wait: the job as accepted, typed all the same
    assert isinstance(accepted, tork_ray.Job) and accepted.name == "typed"


def test_a_failed_job_raises_job_failed_carrying_it(live_engine: LiveEngine) -> None:
    with pytest.raises(JobFailed) as caught:
        tork_ray.submit(doc("fails", "exit 3"), wait=True, url=str(live_engine.http.base_url))
    job = caught.value.job
    assert job.state == "FAILED" and job.error and job.execution[0].state == "FAILED"
    assert job.id in caught.value.message


def test_a_wait_past_its_timeout_raises_and_the_job_runs_on(client: Client) -> None:
    job = client.submit(doc("slow", "sleep 60"))
    try:
        with pytest.raises(WaitTimedOut, match=job.id):
            client.wait(job.id, timeout=0.5)
        assert not client.get_job(job.id).ended
    finally:
        client.cancel_job(job.id)
    cancelled = client.wait(job.id, timeout=60, raise_on_failure=False)
    assert cancelled.state == "CANCELLED"
    with pytest.raises(JobFailed):
        client.wait(job.id)


def test_every_job_and_task_method_is_typed(client: Client) -> None:
    tag = "sdk" + uuid.uuid4().hex[:8]
    job = client.run(doc(tag, "echo one; echo two"))
    assert isinstance(job.execution[0], tork_ray.Task) and job.execution[0].ended
    page = client.list_jobs(q=tag)
    assert isinstance(page, tork_ray.Page) and [j.id for j in page.items] == [job.id]
    assert isinstance(page.items[0], tork_ray.JobSummary) and page.total_items == 1
    task = client.get_task(job.execution[0].id)
    assert task.job_id == job.id and task.state == "COMPLETED" and task.image == TEST_IMAGE
    assert "two" in "".join(part.contents for part in client.task_log(task.id).items)
    assert client.job_log(job.id, q="two").items[0].task_id == task.id
    assert [line for _, line in client.follow_job_log(job.id)] == ["one", "two"]
    assert list(client.follow_task_log(task.id)) == ["one", "two"]
    assert job.to_json()["createdBy"]["username"] == "guest"


def test_scheduled_jobs_nodes_queues_metrics_health(client: Client) -> None:
    scheduled = client.create_scheduled_job(
        {"name": "sdk sched", "schedule": {"cron": "0 0 1 1 *"}, "tasks": [{"name": "t", "image": TEST_IMAGE}]}
    )
    assert isinstance(scheduled, tork_ray.ScheduledJobSummary) and scheduled.state == "ACTIVE"
    assert scheduled.id in {s.id for s in client.list_scheduled_jobs(size=20).items}
    client.pause_scheduled_job(scheduled.id)
    full = client.get_scheduled_job(scheduled.id)
    assert isinstance(full, tork_ray.ScheduledJob) and full.state == "PAUSED" and full.cron == "0 0 1 1 *"
    client.resume_scheduled_job(scheduled.id)
    assert client.get_scheduled_job(scheduled.id).next_fire_at is not None
    client.delete_scheduled_job(scheduled.id)
    with pytest.raises(NotFound):
        client.get_scheduled_job(scheduled.id)
    nodes = client.nodes()
    assert isinstance(nodes[0], tork_ray.Node) and nodes[0].status == "UP" and nodes[0].queues["default"] == 2
    queues = {q.name: q for q in client.queues()}
    assert queues["default"].subscribers == 2 and client.queue("other").subscribers == 1
    metrics = client.metrics()
    assert isinstance(metrics, tork_ray.Metrics) and metrics.nodes.online == 1
    assert "tork_" in client.prometheus_metrics()
    health = client.health()
    assert health.up and health.version == tork_ray.__version__


def test_api_errors_are_tork_errors(client: Client, live_engine: LiveEngine) -> None:
    with pytest.raises(tork_ray.NotFound, match="job not found"):
        client.get_job("0" * 32)
    with pytest.raises(tork_ray.BadRequest, match="tasks"):
        client.submit("name: x\ntasks: []\n")
    waits = f"waits{uuid.uuid4().hex[:8]}"
    with pytest.raises(tork_ray.WaitTimedOut):  # the API's own `wait` (408)
        client.submit(doc(waits, "sleep 30") + "wait: {timeout: 200ms}\n")
    left_running = client.list_jobs(q=waits).items  # it runs on: cancelled, not left for the tests after this one
    assert len(left_running) == 1
    client.cancel_job(left_running[0].id)
    with pytest.raises(tork_ray.PayloadTooLarge):
        client.submit(doc("big", "echo " + "x" * 600_000))
    key = uuid.uuid4().hex
    client.submit(doc("once"), idempotency_key=key)
    with pytest.raises(tork_ray.AlreadyExists):  # the key again, with another body: 409
        client.submit(doc("another"), idempotency_key=key)
    with pytest.raises(tork_ray.Unavailable, match="cannot reach"):
        Client("http://127.0.0.1:9").health()
    for error in (tork_ray.NotFound, tork_ray.TooManyRequests, tork_ray.Unavailable, tork_ray.JobFailed):
        assert issubclass(error, tork_ray.TorkError)


def test_auth_errors_are_tork_errors(live_engine: LiveEngine) -> None:
    with auth_api(live_engine, failures_limit=2) as api:
        user, password = api.new_user("sdk-errors")
        with pytest.raises(tork_ray.Unauthorized):
            Client(api.url, environ={}).list_jobs()
        with pytest.raises(tork_ray.Forbidden):
            Client(api.url, auth=(user, password)).create_role("nope-" + api.tag)
        assert Client(api.url, auth=api.key).list_jobs().items is not None  # a str is the API key
        wrong = Client(api.url, auth=(user, "wrong"))
        with pytest.raises(tork_ray.TooManyRequests) as caught:
            for _ in range(5):  # two failures allowed, then 429 with Retry-After
                with pytest.raises(tork_ray.Unauthorized):
                    wrong.list_jobs()
        assert caught.value.retry_after and caught.value.retry_after > 0


def test_the_async_client_is_the_twin(live_engine: LiveEngine) -> None:
    url = str(live_engine.http.base_url)

    async def scenario() -> None:
        async with tork_ray.AsyncClient(url) as client:
            job = await client.run(doc("async", "echo a; echo b > $TORK_OUTPUT"))
            assert job.state == "COMPLETED" and job.execution[0].result == "b\n"
            assert [line async for _, line in client.follow_job_log(job.id)] == ["a"]
            assert (await client.list_jobs(q=job.name)).items[0].id == job.id
            assert (await client.health()).up and (await client.metrics()).nodes.online == 1
            with pytest.raises(tork_ray.NotFound):
                await client.get_task("0" * 32)
            with pytest.raises(JobFailed) as caught:
                await client.run(doc("async fails", "exit 1"))
            assert caught.value.job.state == "FAILED"
        finished = await tork_ray.aio.submit(doc("async submit"), wait=True, url=url)
        assert finished.state == "COMPLETED"

    asyncio.run(scenario())


def test_a_ray_client_driver_submits_without_a_url(live_engine: LiveEngine) -> None:
    # ray://: the Ray Client. A client server of our own (its legacy mode: one process, itself a driver of the
    # session's cluster) stands in for the head's; the driver reaches the cluster only through it.
    port = free_port()
    address = ray.get_runtime_context().gcs_address
    options = ["--mode", "legacy", "--address", address, "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "ray.util.client.server", *options],
        env=driver_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        poll_until(lambda: listening(port), 120, "the Ray Client server to listen", every=0.2)
        run_driver(f"ray://127.0.0.1:{port}", "from a ray client", "through ray client")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
