"""Health, queues, nodes, metrics (JSON and Prometheus) and users over real HTTP against the session engine."""

from __future__ import annotations

import uuid

from tests.conftest import TEST_IMAGE
from tests.engine import QUEUES, LiveEngine
from tests.polling import poll_until
from tork_ray.api.passwords import verify_password


def job_on(queue: str, run: str = "echo hi") -> str:
    return f"""
name: queued {uuid.uuid4().hex[:8]}
tasks:
  - name: t
    image: {TEST_IMAGE}
    queue: {queue}
    run: {run}
"""


def test_health(live_engine: LiveEngine) -> None:
    r = live_engine.http.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "UP" and r.json()["version"]


def test_queues_show_slots_backlog_and_running(live_engine: LiveEngine) -> None:
    http = live_engine.http
    queues = {q["name"]: q for q in http.get("/queues").json()}
    for name, slots in QUEUES.items():
        assert queues[name]["subscribers"] == slots
        assert set(queues[name]) == {"name", "size", "subscribers", "unacked"}
    # A queue no node serves: its tasks wait in the coordinator's backlog, visible with 0 subscribers.
    lonely = "lonely-" + uuid.uuid4().hex[:6]
    job_id = live_engine.submit(job_on(lonely))["id"]
    info = poll_until(
        lambda: (r := http.get(f"/queues/{lonely}")).status_code == 200 and r.json(), what=f"queue {lonely} to appear"
    )
    assert info == {"name": lonely, "size": 1, "subscribers": 0, "unacked": 0}
    assert lonely in {q["name"] for q in http.get("/queues").json()}
    # Running tasks count as unacked.
    busy = live_engine.submit(job_on("other", run="sleep 30"))["id"]
    live_engine.wait_for(busy, "RUNNING")
    poll_until(lambda: http.get("/queues/other").json()["unacked"] == 1, what="one running task on queue other")
    http.put(f"/jobs/{busy}/cancel")
    # Purging the backlog fails the waiting task, and with it the job (no retry left).
    r = http.delete(f"/queues/{lonely}")
    assert r.status_code == 200 and r.content == b""
    job = live_engine.wait_for(job_id)
    assert job["state"] == "FAILED" and job["execution"][0]["error"] == f"queue {lonely} was purged"
    assert http.get(f"/queues/{lonely}").status_code == 404


def test_queue_errors(live_engine: LiveEngine) -> None:
    http = live_engine.http
    r = http.get("/queues/nosuchqueue")
    assert (r.status_code, r.json()) == (404, {"message": "queue nosuchqueue not found"})
    r = http.delete("/queues/nosuchqueue")
    assert (r.status_code, r.json()) == (404, {"message": "queue nosuchqueue not found"})
    for name in ("x-node1", "pending", "jobs"):
        r = http.delete(f"/queues/{name}")
        assert (r.status_code, r.json()) == (400, {"message": f"queue {name} is not a task queue"})


def test_nodes_list_the_queue_node(live_engine: LiveEngine) -> None:
    nodes = live_engine.http.get("/nodes").json()
    assert len(nodes) == 1
    node = nodes[0]
    assert node["status"] == "UP"
    assert node["queues"] == QUEUES
    assert node["hostname"] and node["id"] and node["version"]
    assert 0.0 <= node["cpuPercent"] <= 100.0
    assert node["startedAt"] <= node["lastHeartbeatAt"]
    busy = live_engine.submit(job_on("other", run="sleep 30"))["id"]
    live_engine.wait_for(busy, "RUNNING")
    poll_until(lambda: live_engine.http.get("/nodes").json()[0]["taskCount"] >= 1, what="a task counted on the node")
    live_engine.http.put(f"/jobs/{busy}/cancel")
    live_engine.wait_for(busy)


def test_metrics_json(live_engine: LiveEngine) -> None:
    busy = live_engine.submit(job_on("other", run="sleep 30"))["id"]
    live_engine.wait_for(busy, "RUNNING")
    metrics = poll_until(
        lambda: (m := live_engine.http.get("/metrics").json())["tasks"]["running"] >= 1 and m,
        what="a running task in /metrics",
    )
    assert set(metrics) == {"jobs", "tasks", "nodes"}
    assert metrics["jobs"]["running"] >= 1
    assert metrics["nodes"]["online"] == 1 and 0 <= metrics["nodes"]["cpuPercent"] <= 100
    live_engine.http.put(f"/jobs/{busy}/cancel")
    live_engine.wait_for(busy)


def test_metrics_prometheus(live_engine: LiveEngine) -> None:
    live_engine.wait_for(live_engine.submit(job_on("default"))["id"])
    r = live_engine.http.get("/metrics/prometheus")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = dict(line.rsplit(" ", 1) for line in r.text.splitlines() if line and not line.startswith("#"))
    assert float(samples['tork_jobs_finished_total{state="COMPLETED"}']) >= 1
    assert float(samples['tork_tasks_finished_total{state="COMPLETED"}']) >= 1
    assert float(samples['tork_jobs{state="COMPLETED"}']) >= 1
    assert float(samples["tork_task_duration_seconds_count"]) >= 1
    assert samples['tork_task_duration_seconds_bucket{le="+Inf"}'] == samples["tork_task_duration_seconds_count"]
    assert samples["tork_nodes_online"] == "1"
    assert samples['tork_queue_subscribers{queue="default"}'] == str(QUEUES["default"])
    assert "# TYPE tork_task_duration_seconds histogram" in r.text
    # A scraper asking for openmetrics on /metrics gets the text format too; plain clients get JSON.
    scraped = live_engine.http.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    assert scraped.text.startswith("# HELP")
    assert live_engine.http.get("/metrics", headers={"Accept": "*/*"}).json()["nodes"]["online"] == 1


def test_users(live_engine: LiveEngine) -> None:
    http = live_engine.http
    name = "user" + uuid.uuid4().hex[:8]
    r = http.post("/users", json={"username": name, "password": "pa55-word!", "name": "Some One"})
    assert r.status_code == 200, r.text
    user = r.json()
    assert set(user) == {"id", "name", "username", "createdAt"}
    assert user["username"] == name and user["name"] == "Some One"
    assert "pa55-word!" not in r.text
    stored = live_engine.store.get_user(name)
    assert stored is not None and stored[1].startswith("scrypt$") and verify_password("pa55-word!", stored[1])
    assert not verify_password("wrong", stored[1])
    # Any content type: the body is read as JSON.
    other = http.post(
        "/users",
        content=b'{"username":"x' + name.encode() + b'","password":"p"}',
        headers={"Content-Type": "text/plain"},
    )
    assert other.status_code == 200
    for body, message in (
        ({"password": "p"}, "must provide username"),
        ({"username": "someone"}, "must provide password"),
        ({"username": name, "password": "other"}, "user already exists"),
        ({"username": "guest", "password": "other"}, "user already exists"),
    ):
        r = http.post("/users", json=body)
        assert (r.status_code, r.json()) == (400, {"message": message})
    r = http.post("/users", content=b"{not json")
    assert r.status_code == 400 and r.json()["message"].startswith("json:")
    guest = live_engine.store.get_user("guest")
    assert guest is not None and guest[0].disabled and guest[1] == ""
