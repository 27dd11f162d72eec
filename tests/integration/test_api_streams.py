"""Live log following over server-sent events: lines arrive while the task runs; the stream ends with it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import httpx

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.polling import poll_until
from tork_ray.runtime.base import LABEL_TASK

SLOW = f"""
name: streamed {{tag}}
tasks:
  - name: talker
    image: {TEST_IMAGE}
    run: |
      echo first line
      echo second line
  - name: closer
    image: {TEST_IMAGE}
    run: echo last words
"""

# The talker holds its second line back until the test creates /tmp/go in its container: the first line can
# only have been streamed live, while the task still ran, with no timing window involved.
GATED = f"""
name: gated {{tag}}
tasks:
  - name: talker
    image: {TEST_IMAGE}
    run: |
      echo first line
      while [ ! -f /tmp/go ]; do sleep 0.1; done
      echo second line
"""


def events(http: httpx.Client, path: str) -> Iterator[tuple[str, str]]:
    """(event, data) per server-sent event."""
    with http.stream("GET", path, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = "message", []
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
            elif line == "" and data:
                yield kind, "\n".join(data)
                kind, data = "message", []


def first_task(live_engine: LiveEngine, job_id: str) -> dict[str, Any]:
    execution = poll_until(
        lambda: live_engine.http.get(f"/jobs/{job_id}").json().get("execution"), what=f"a task of job {job_id}"
    )
    return execution[0]  # type: ignore[no-any-return]


def release(docker_client: docker.DockerClient, task_id: str) -> None:
    container = poll_until(
        lambda: docker_client.containers.list(filters={"label": f"{LABEL_TASK}={task_id}"}),
        what=f"the container of task {task_id}",
    )[0]
    assert container.exec_run(["touch", "/tmp/go"]).exit_code == 0


def test_task_stream_sends_lines_as_they_are_written_and_ends_with_the_task(
    live_engine: LiveEngine, docker_client: docker.DockerClient
) -> None:
    job_id = live_engine.submit(GATED.format(tag=uuid.uuid4().hex[:6]))["id"]
    task = first_task(live_engine, job_id)
    stream = events(live_engine.http, f"/tasks/{task['id']}/log/stream")
    assert next(stream) == ("log", "first line")
    # Followed live: the first line came while the task was still waiting for us to let it go on.
    assert live_engine.http.get(f"/tasks/{task['id']}").json()["state"] == "RUNNING"
    release(docker_client, task["id"])
    rest = list(stream)
    assert [data for kind, data in rest if kind == "log"] == ["second line"]
    kind, data = rest[-1]
    assert kind == "end" and json.loads(data) == {"taskId": task["id"], "state": "COMPLETED"}


def test_job_stream_follows_every_task_and_ends_with_the_job(live_engine: LiveEngine) -> None:
    job_id = live_engine.submit(SLOW.format(tag=uuid.uuid4().hex[:6]))["id"]
    received = list(events(live_engine.http, f"/jobs/{job_id}/log/stream"))
    lines = [json.loads(data) for kind, data in received if kind == "log"]
    assert [line["line"] for line in lines] == ["first line", "second line", "last words"]
    assert len({line["taskId"] for line in lines}) == 2
    assert received[-1][0] == "end" and json.loads(received[-1][1]) == {"jobId": job_id, "state": "COMPLETED"}
    assert live_engine.http.get(f"/jobs/{job_id}").json()["state"] == "COMPLETED"


def test_stream_of_a_finished_task_replays_its_log_and_ends(live_engine: LiveEngine) -> None:
    job = live_engine.wait_for(live_engine.submit(SLOW.format(tag=uuid.uuid4().hex[:6]))["id"])
    received = list(events(live_engine.http, f"/tasks/{job['execution'][1]['id']}/log/stream"))
    assert [(kind, data) for kind, data in received[:-1]] == [("log", "last words")]
    assert received[-1][0] == "end"


def test_streams_of_unknown_ids_are_404(live_engine: LiveEngine) -> None:
    for path, message in (("/tasks/", "task not found"), ("/jobs/", "job not found")):
        r = live_engine.http.get(path + "0" * 32 + "/log/stream")
        assert (r.status_code, r.json()) == (404, {"message": message})


def test_python_client_follows_and_reads(live_engine: LiveEngine) -> None:
    from tork_ray.client import Client

    client = Client(str(live_engine.http.base_url))
    try:
        job_id = client.submit(SLOW.format(tag=uuid.uuid4().hex[:6])).id
        lines = list(client.follow_job_log(job_id))
        assert [line for _, line in lines] == ["first line", "second line", "last words"]
        assert client.get_job(job_id).state == "COMPLETED"
        assert client.list_jobs(q="streamed").total_items >= 1
        task_id = lines[0].task_id
        assert list(client.follow_task_log(task_id)) == ["first line", "second line"]
        assert client.task_log(task_id, q="second").items[0].number >= 1
        assert client.queue("default").subscribers >= 1 and client.nodes()[0].status == "UP"
        assert client.metrics().nodes.online == 1
    finally:
        client.close()
