"""The seed example of issue #2, end to end through HTTP, Ray and Docker."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine

SEED = f"""
name: hello job
tasks:
  - name: say hello
    var: task1
    image: {TEST_IMAGE}
    run: |
      echo -n hello world > $TORK_OUTPUT
  - name: say goodbye
    image: {TEST_IMAGE}
    run: |
      echo -n bye world
"""


def our_containers(docker_client: Any, engine: LiveEngine, job_id: str) -> list[Any]:
    """The containers of this job (other tests' jobs may still run in the session's engine)."""
    labels = [f"tork_ray.scope={engine.settings.ray.namespace}", f"tork_ray.job-id={job_id}"]
    return docker_client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)  # type: ignore[no-any-return]


def test_seed_job_completes_with_its_result(live_engine: LiveEngine, docker_client: Any) -> None:
    summary = live_engine.submit(SEED)
    assert len(summary["id"]) == 32 and int(summary["id"], 16) >= 0
    assert summary["state"] == "PENDING"
    assert summary["name"] == "hello job"
    assert summary["taskCount"] == 2
    assert "position" in summary

    job = live_engine.wait_for(summary["id"])
    assert job["state"] == "COMPLETED", job
    assert job["context"]["tasks"]["task1"] == "hello world"
    assert [t["state"] for t in job["execution"]] == ["COMPLETED", "COMPLETED"]
    assert [t["name"] for t in job["execution"]] == ["say hello", "say goodbye"]
    assert job["execution"][0]["result"] == "hello world"
    assert job["position"] == 3
    assert job["progress"] == 100
    for key in ("createdAt", "startedAt", "completedAt"):
        assert key in job
    assert our_containers(docker_client, live_engine, job["id"]) == []


def test_same_document_as_json(live_engine: LiveEngine) -> None:
    summary = live_engine.submit(json.dumps(yaml.safe_load(SEED)), content_type="application/json")
    job = live_engine.wait_for(summary["id"])
    assert job["state"] == "COMPLETED"
    assert job["context"]["tasks"]["task1"] == "hello world"


def test_task_log_is_kept(live_engine: LiveEngine) -> None:
    job = live_engine.wait_for(live_engine.submit(SEED)["id"])
    goodbye = job["execution"][1]
    parts = live_engine.http.get(f"/tasks/{goodbye['id']}/log").json()
    assert "bye world" in "".join(part["contents"] for part in parts["items"])
    job_log = live_engine.http.get(f"/jobs/{job['id']}/log").json()
    assert job_log["totalItems"] >= 1


def test_non_zero_exit_fails_task_and_job(live_engine: LiveEngine, docker_client: Any) -> None:
    body = f"""
name: failing job
tasks:
  - name: boom
    image: {TEST_IMAGE}
    run: |
      echo first line
      echo last words
      exit 3
  - name: never
    image: {TEST_IMAGE}
    run: echo never
"""
    job = live_engine.wait_for(live_engine.submit(body)["id"])
    assert job["state"] == "FAILED"
    assert len(job["execution"]) == 1
    failed = job["execution"][0]
    assert failed["state"] == "FAILED"
    assert failed["error"].startswith("exit code 3")
    assert "last words" in failed["error"]
    assert job["error"] == failed["error"]
    assert "failedAt" in job
    assert our_containers(docker_client, live_engine, job["id"]) == []


def test_list_is_newest_first_in_tork_page_shape(live_engine: LiveEngine) -> None:
    first = live_engine.submit(SEED)["id"]
    second = live_engine.submit(SEED)["id"]
    page = live_engine.http.get("/jobs", params={"size": 2}).json()
    assert set(page) == {"items", "number", "size", "totalPages", "totalItems"}
    assert [item["id"] for item in page["items"]] == [second, first]
    assert page["number"] == 1 and page["size"] == 2
    assert page["totalItems"] >= 2
    live_engine.wait_for(first)
    live_engine.wait_for(second)


def test_health(live_engine: LiveEngine) -> None:
    response = live_engine.http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "UP"


def test_malformed_body_is_a_400_and_the_engine_keeps_serving(live_engine: LiveEngine) -> None:
    response = live_engine.http.post("/jobs", content=b"name: [unclosed", headers={"Content-Type": "text/yaml"})
    assert response.status_code == 400
    assert "yaml" in response.json()["message"].lower()
    response = live_engine.http.post("/jobs", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "name" in response.json()["message"]
    assert live_engine.http.get("/health").json()["status"] == "UP"


def test_unknown_job_is_404(live_engine: LiveEngine) -> None:
    response = live_engine.http.get("/jobs/" + "0" * 32)
    assert response.status_code == 404
    assert response.json() == {"message": "job not found"}
