"""/jobs over real HTTP against the session engine: submit, list and search, get, logs, cancel, restart."""

from __future__ import annotations

import json
import uuid

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.polling import poll_until


def word() -> str:
    """A word no other test uses, so searches see only this test's jobs."""
    return "zq" + uuid.uuid4().hex[:10]


def quick(name: str, *, description: str = "", tags: str = "[]", run: str = "echo hi", extra: str = "") -> str:
    return f"""
name: {name}
description: "{description}"
tags: {tags}
{extra}
tasks:
  - name: only
    image: {TEST_IMAGE}
    run: |
{"".join(f"      {line}" + chr(10) for line in run.splitlines())}
"""


def test_submit_answers_a_pending_summary(live_engine: LiveEngine) -> None:
    body = live_engine.submit(quick("summary " + word()))
    assert body["state"] == "PENDING"
    assert set(body) >= {"id", "name", "state", "createdAt", "createdBy", "position", "taskCount"}
    assert "tasks" not in body and "execution" not in body
    assert body["createdBy"]["username"] == "guest"
    live_engine.wait_for(body["id"])


def test_submit_errors(live_engine: LiveEngine) -> None:
    http = live_engine.http
    r = http.post("/jobs", content=b"name: x\ntasks: []", headers={"Content-Type": "text/yaml"})
    assert r.status_code == 400 and "tasks" in r.json()["message"]
    r = http.post("/jobs", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["message"] == "unknown content type: text/plain"
    r = http.post("/jobs", content=b"{}")
    assert r.status_code == 400 and r.json()["message"] == "missing content type"
    bad_wait = quick("w", extra="wait: {timeout: forever}")
    r = http.post("/jobs", content=bad_wait.encode(), headers={"Content-Type": "text/yaml"})
    assert r.status_code == 400 and "timeout" in r.json()["message"]


def test_wait_answers_the_full_job_or_408(live_engine: LiveEngine) -> None:
    http = live_engine.http
    done = http.post(
        "/jobs",
        content=quick("waited " + word(), extra="wait: {timeout: 60s}").encode(),
        headers={"Content-Type": "text/yaml"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "COMPLETED" and len(done.json()["execution"]) == 1
    slow = http.post(
        "/jobs",
        content=quick("slow " + word(), run="sleep 30", extra="wait: {timeout: 1s}").encode(),
        headers={"Content-Type": "text/yaml"},
    )
    assert slow.status_code == 408
    assert slow.json() == {"message": "timeout waiting for job to complete"}
    for item in http.get("/jobs", params={"q": "slow", "size": 20}).json()["items"]:
        if item["state"] in ("PENDING", "SCHEDULED", "RUNNING"):
            http.put(f"/jobs/{item['id']}/cancel")


def test_list_paging_defaults_and_clamps(live_engine_both: LiveEngine) -> None:
    tag = word()
    ids = [live_engine_both.submit(quick(f"page {i}", tags=f"[{tag}]"))["id"] for i in range(3)]
    http = live_engine_both.http
    default = http.get("/jobs").json()
    assert default["number"] == 1 and default["size"] == min(10, default["totalItems"])
    assert http.get("/jobs", params={"size": 500}).json()["size"] <= 20
    assert http.get("/jobs", params={"size": 0, "page": 0}).json()["number"] == 1
    page = http.get("/jobs", params={"q": f"tag:{tag}", "size": 2}).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    assert (page["totalItems"], page["totalPages"], page["size"]) == (3, 2, 2)
    second = http.get("/jobs", params={"q": f"tag:{tag}", "size": 2, "page": 2}).json()
    assert [item["id"] for item in second["items"]] == [ids[0]]
    past = http.get("/jobs", params={"q": f"tag:{tag}", "page": 9}).json()
    assert past["items"] == [] and past["totalItems"] == 3
    for param, message in (("page", "invalid page number: x"), ("size", "invalid size: x")):
        r = http.get("/jobs", params={param: "x"})
        assert (r.status_code, r.json()) == (400, {"message": message})
    for job_id in ids:
        live_engine_both.wait_for(job_id)


def test_search_words_stemming_state_and_tags(live_engine_both: LiveEngine) -> None:
    w = word()
    a = live_engine_both.submit(quick(f"nightly {w} builds", description="compiles the code", tags="[red, blue]"))["id"]
    b = live_engine_both.submit(quick(f"weekly {w} report", description="emails people", tags="[green]"))["id"]
    for job_id in (a, b):
        live_engine_both.wait_for(job_id)

    def found(q: str) -> set[str]:
        return {item["id"] for item in live_engine_both.http.get("/jobs", params={"q": q, "size": 20}).json()["items"]}

    assert found(w) == {a, b}
    assert found(f"{w} building") == {a}  # stemming: building ~ builds
    assert found(f"{w} compiled") == {a}  # description, stemmed
    assert found(f"{w} the nightly") == {a}  # stop words are ignored
    assert found(f"{w} completed") == {a, b}  # the state is searchable
    assert found(f"{w} failed") == set()
    assert found(f"{w} tag:blue") == {a}
    assert found(f"{w} tags:green,red") == {a, b}  # any of the tags
    assert found(f"tags:green,yellow {w}") == {b}
    assert found(f"{w} tag:nosuch") == set()
    total = live_engine_both.http.get("/jobs", params={"q": w}).json()["totalItems"]
    assert total == 2


def test_get_job_and_404(live_engine: LiveEngine) -> None:
    job_id = live_engine.submit(quick("get " + word()))["id"]
    job = live_engine.wait_for(job_id)
    assert job["id"] == job_id and job["execution"][0]["state"] == "COMPLETED"
    r = live_engine.http.get("/jobs/" + "f" * 32)
    assert (r.status_code, r.json()) == (404, {"message": "job not found"})


def test_job_and_task_logs_paging_and_search(live_engine_both: LiveEngine) -> None:
    run = "echo alpha lines here\nsleep 1.2\necho beta jumping\nsleep 1.2\necho gamma"
    job = live_engine_both.wait_for(live_engine_both.submit(quick("logs " + word(), run=run))["id"])
    task_id = job["execution"][0]["id"]
    http = live_engine_both.http
    parts = http.get(f"/tasks/{task_id}/log").json()
    assert parts["totalItems"] >= 2, parts
    numbers = [p["number"] for p in parts["items"]]
    assert numbers == sorted(numbers, reverse=True) and numbers[-1] == 1
    assert set(parts["items"][0]) == {"id", "number", "taskId", "contents", "createdAt"}
    text = "".join(p["contents"] for p in reversed(parts["items"]))
    assert "alpha lines here" in text and "gamma" in text
    one = http.get(f"/tasks/{task_id}/log", params={"size": 1}).json()
    assert one["size"] == 1 and one["totalPages"] == parts["totalItems"]
    hits = http.get(f"/tasks/{task_id}/log", params={"q": "jumped"}).json()  # stemmed: jumped ~ jumping
    assert [p["contents"] for p in hits["items"]] and all("jumping" in p["contents"] for p in hits["items"])
    assert hits["totalItems"] == parts["totalItems"]  # Tork: the total ignores q
    assert http.get(f"/tasks/{task_id}/log", params={"q": "nowhere"}).json()["items"] == []
    job_log = http.get(f"/jobs/{job['id']}/log").json()
    assert job_log["totalItems"] == parts["totalItems"]
    assert [p["number"] for p in http.get(f"/jobs/{job['id']}/log", params={"q": "gamma"}).json()["items"]]
    for path in (f"/tasks/{task_id}/log", f"/jobs/{job['id']}/log"):
        assert http.get(path, params={"size": "big"}).status_code == 400
    assert http.get("/tasks/" + "0" * 32 + "/log").json() == {"message": "task not found"}
    assert http.get("/jobs/" + "0" * 32 + "/log").status_code == 404


def test_get_task_and_404(live_engine_both: LiveEngine) -> None:
    job = live_engine_both.wait_for(live_engine_both.submit(quick("task " + word()))["id"])
    task = live_engine_both.http.get(f"/tasks/{job['execution'][0]['id']}").json()
    assert task["jobId"] == job["id"] and task["state"] == "COMPLETED" and task["run"].startswith("echo hi")
    r = live_engine_both.http.get("/tasks/" + "0" * 32)
    assert (r.status_code, r.json()) == (404, {"message": "task not found"})


def test_cancel_and_restart(live_engine_both: LiveEngine) -> None:
    http = live_engine_both.http
    job_id = live_engine_both.submit(quick("cancel " + word(), run="sleep 30"))["id"]
    live_engine_both.wait_for(job_id, "RUNNING")
    assert http.put(f"/jobs/{job_id}/cancel").json() == {"status": "OK"}
    assert live_engine_both.wait_for(job_id)["state"] == "CANCELLED"
    again = http.put(f"/jobs/{job_id}/cancel")
    assert (again.status_code, again.json()) == (400, {"message": "job is not running"})
    assert http.put(f"/jobs/{job_id}/restart").json() == {"status": "OK"}
    assert live_engine_both.wait_for(job_id, "RUNNING")["state"] == "RUNNING"
    http.put(f"/jobs/{job_id}/cancel")
    live_engine_both.wait_for(job_id)
    done = live_engine_both.wait_for(live_engine_both.submit(quick("done " + word()))["id"])
    r = http.put(f"/jobs/{done['id']}/restart")
    assert (r.status_code, r.json()) == (400, {"message": "job is COMPLETED and can not be restarted"})
    for verb in ("cancel", "restart"):
        r = http.put(f"/jobs/{'0' * 32}/{verb}")
        assert (r.status_code, r.json()) == (404, {"message": "job not found"})


def test_unknown_route_and_wrong_method(live_engine: LiveEngine) -> None:
    r = live_engine.http.get("/nowhere")
    assert (r.status_code, r.json()) == (404, {"message": "Not Found"})
    r = live_engine.http.delete("/jobs")
    assert r.status_code == 405 and "message" in r.json()


def test_json_submission_with_inputs(live_engine_both: LiveEngine) -> None:
    doc = {
        "name": "json " + word(),
        "inputs": {"greeting": "hey"},
        "tasks": [{"name": "t", "image": TEST_IMAGE, "env": {"G": "{{ inputs.greeting }}"}, "run": "echo $G"}],
    }
    body = live_engine_both.submit(json.dumps(doc), content_type="application/json")
    assert body["inputs"] == {"greeting": "hey"}
    job = live_engine_both.wait_for(body["id"])
    assert job["state"] == "COMPLETED"
    log_path = f"/tasks/{job['execution'][0]['id']}/log"

    def logged() -> str:
        # Fetched anew on every try: the last part may be stored just after the job completes.
        return "".join(p["contents"] for p in live_engine_both.http.get(log_path).json()["items"])

    poll_until(lambda: "hey" in logged(), what="the rendered input in the task's log")


def test_huge_or_odd_page_numbers_are_400_on_every_paged_route(live_engine: LiveEngine) -> None:
    """Found by the fuzz (number-shaped `page` values): page 10**20 (or 2**62) overflowed the store's
    64-bit offset, a 500 on every paged route; " 1" and an Arabic-Indic one (U+0661) passed as numbers (Tork
    reads ASCII digits only)."""
    job = live_engine.wait_for(live_engine.submit(quick("paged " + word()))["id"])
    paths = ("/jobs", f"/jobs/{job['id']}/log", f"/tasks/{job['execution'][0]['id']}/log")
    for path in paths:
        for page in (str(10**20), str(2**62), str(2**63), " 1", "\u0661", "1_0"):
            r = live_engine.http.get(path, params={"page": page})
            assert r.status_code == 400, (path, page, r.text)
            assert r.json()["message"].startswith(f"invalid page number: {page}"), r.json()
        r = live_engine.http.get(path, params={"page": "1000000000"})
        assert r.status_code == 200 and r.json()["items"] == []
        assert live_engine.http.get(path, params={"size": str(10**30)}).json() == {"message": f"invalid size: {10**30}"}


def test_control_characters_in_a_yaml_body_are_400(live_engine: LiveEngine) -> None:
    """Found by the fuzz (raw bodies): PyYAML's reader refuses NUL and other control characters while the loader
    is being made, outside the parse's error handling: a 500 instead of a 400, and nothing was stored."""
    before = live_engine.store.list_jobs(1, 1, None)[1]
    for body in (b"\x00", b"name: x\x07\ntasks: []", b"name: \x1b[31mred\n"):
        r = live_engine.http.post("/jobs", content=body, headers={"Content-Type": "text/yaml"})
        assert r.status_code == 400, r.text
        assert r.json()["message"].startswith("yaml: unacceptable character #x"), r.json()
    assert live_engine.store.list_jobs(1, 1, None)[1] == before
