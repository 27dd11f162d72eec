"""tork-web's API contract (issue 14): every call the pages and API routes of runabol/tork-web (src/) make to the
Tork API, made as tork-web makes them against the session engine, with the fields, types and shapes its pages
read checked.

tork-web calls `${BACKEND_URL}/...` from its server components (lists, job page, nodes, queues, scheduled) and
from its /api/* routes, which proxy the browser's calls (submit, logs, cancel, restart, pause, resume, delete).
It sends no auth header and no `size` on lists (its pager assumes 10 a page). Its proxies read every answer as
JSON, errors included, and its submit form treats any `message` in an answer as an error."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import yaml

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.polling import poll_until

# What date-fns' parseISO (tork-web's formatTimestamp, formatRuntime, node uptime) reads, with a zone.
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([.,]\d+)?(Z|[+-]\d{2}(:?\d{2})?)")
JOB_STATES = {"PENDING", "SCHEDULED", "RUNNING", "CANCELLED", "COMPLETED", "FAILED"}
NEVER_SOON = "0 0 1 1 *"


def word() -> str:
    return "tw" + uuid.uuid4().hex[:10]


def is_time(value: Any) -> bool:
    return isinstance(value, str) and ISO.fullmatch(value) is not None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_page(page: dict[str, Any]) -> list[dict[str, Any]]:
    """models/page.ts and components/shared/data-table.tsx: `items`, and `number`, `size` (items on this page),
    `totalPages`, `totalItems` for "Showing (number-1)*10+1 to (number-1)*10+size of totalItems" and the pager."""
    assert isinstance(page["items"], list), page
    for key in ("number", "size", "totalPages", "totalItems"):
        assert isinstance(page[key], int) and not isinstance(page[key], bool), (key, page)
    assert page["size"] == len(page["items"]), page
    return page["items"]  # type: ignore[no-any-return]


def check_job_row(item: dict[str, Any]) -> None:
    """app/jobs/page.tsx, one table row: name, the sub/scheduled badges, created/ended times, % completed from
    position and taskCount, runtime from startedAt to completedAt/failedAt, the state badge and its buttons."""
    assert isinstance(item["id"], str) and isinstance(item["name"], str), item
    assert item["state"] in JOB_STATES, item
    assert is_time(item["createdAt"]), item
    assert isinstance(item["position"], int) and isinstance(item["taskCount"], int) and item["taskCount"] >= 1, item
    for key in ("startedAt", "completedAt", "failedAt"):
        assert item.get(key) is None or is_time(item[key]), (key, item)
    assert item.get("parentId") is None or isinstance(item["parentId"], str), item
    assert item.get("schedule") is None or isinstance(item["schedule"], dict), item
    assert "message" not in item, item


def check_task_row(task: dict[str, Any]) -> None:
    """app/jobs/[id]/page.tsx, one execution row: name, started/ended, runtime, state, output (error or result),
    and the task's id for its Logs button (components/task-logs.tsx)."""
    assert isinstance(task["id"], str) and isinstance(task["name"], str), task
    assert isinstance(task["state"], str), task
    for key in ("startedAt", "completedAt", "failedAt"):
        assert task.get(key) is None or is_time(task[key]), (key, task)
    for key in ("error", "result"):
        assert task.get(key) is None or isinstance(task[key], str), (key, task)


def web_submit(http: httpx.Client, text: str) -> tuple[httpx.Response, dict[str, Any]]:
    """src/app/api/jobs/route.ts: the editor's text, as text/yaml, to /scheduled-jobs when it holds "cron" past
    its first character, else to /jobs; the answer is read as JSON whatever its status."""
    path = "/scheduled-jobs" if text.find("cron") > 0 else "/jobs"
    response = http.post(path, content=text.encode(), headers={"content-type": "text/yaml"})
    return response, response.json()


def web_submit_ok(http: httpx.Client, text: str) -> dict[str, Any]:
    """components/create-job.tsx: a success has no `message` (that is shown as an error) and has `cron` (a
    scheduled job: go to /jobs) or `id` (go to /jobs/{id})."""
    response, data = web_submit(http, text)
    assert response.status_code == 200, response.text
    assert "message" not in data, data
    assert isinstance(data["id"], str), data
    return data


def put_json(http: httpx.Client, path: str) -> dict[str, Any]:
    """The cancel, restart, pause and resume proxies: PUT, then `res.json()` on the answer."""
    response = http.put(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict) and "message" not in body, body
    return body  # type: ignore[no-any-return]


def web_job_log(http: httpx.Client, path: str, page: int = 1) -> tuple[str, dict[str, Any]]:
    """src/app/api/jobs/[id]/log and tasks/[id]/log: `?page=N&size=50`; components/job-logs.tsx and
    task-logs.tsx show each part's lines reversed, the parts joined in order (newest line first), and page
    with `totalPages`."""
    response = http.get(f"{path}/log", params={"page": str(page), "size": "50"})
    assert response.status_code == 200, response.text
    log = response.json()
    assert isinstance(log["totalPages"], int) and isinstance(log["items"], list), log
    for part in log["items"]:
        assert isinstance(part["contents"], str) and is_time(part["createdAt"]), part
    shown = "".join("\n".join(reversed(p["contents"].split("\n"))) for p in log["items"]).strip()
    return shown, log


def jobs_page(http: httpx.Client, page: int, q: str) -> dict[str, Any]:
    """app/jobs/page.tsx getJobs: `/jobs?page=${page}&q=${q}` (q may be empty), no size."""
    response = http.get(f"/jobs?page={page}&q={q}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def job_yaml(name: str, run: str, *, extra: str = "", task_extra: str = "") -> str:
    lines = "".join(f"      {line}\n" for line in run.splitlines())
    return f"name: {name}\n{extra}tasks:\n  - name: only\n    image: {TEST_IMAGE}\n{task_extra}    run: |\n{lines}"


def test_jobs_page_paging_search_and_metrics(live_engine: LiveEngine) -> None:
    """app/jobs/page.tsx: GET /jobs?page=N&q=... (Table/DataTable pager with 10 a page, the search box of
    components/dashboard/jobs/jobs-search-input.tsx: name, description or state) and GET /metrics (the four
    cards: jobs.running, tasks.running, nodes.online, nodes.cpuPercent)."""
    http, w, d = live_engine.http, word(), word()
    # Tasks skipped by `if`: eleven jobs for two pages without eleven containers.
    ids = [
        web_submit_ok(
            http,
            job_yaml(
                f"page {i} {w}",
                "echo hi",
                extra=f"description: about {d}\n" if i == 0 else "",
                task_extra='    if: "false"\n',
            ),
        )["id"]
        for i in range(11)
    ]
    for job_id in ids:
        live_engine.wait_for(job_id, "COMPLETED")
    first = jobs_page(http, 1, w)
    rows = check_page(first)
    assert (first["number"], first["size"], first["totalItems"], first["totalPages"]) == (1, 10, 11, 2)
    assert [row["id"] for row in rows] == ids[::-1][:10]  # newest first
    for row in rows:
        check_job_row(row)
        assert row["state"] == "COMPLETED" and is_time(row["completedAt"])
    second = jobs_page(http, 2, w)
    assert [row["id"] for row in check_page(second)] == [ids[0]]
    assert (second["number"] - 1) * 10 + second["size"] == second["totalItems"]  # "Showing 11 to 11 of 11"
    assert second["number"] == second["totalPages"]  # no Next link
    assert [row["id"] for row in check_page(jobs_page(http, 1, d))] == [ids[0]]  # by description
    assert {row["id"] for row in check_page(jobs_page(http, 2, f"{w} completed"))} == {ids[0]}  # by state
    for row in check_page(jobs_page(http, 1, "")):  # no search: q= sent empty
        check_job_row(row)

    metrics = http.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    body = metrics.json()
    assert isinstance(body["jobs"]["running"], int) and isinstance(body["tasks"]["running"], int), body
    assert isinstance(body["nodes"]["online"], int) and body["nodes"]["online"] >= 1, body
    assert is_number(body["nodes"]["cpuPercent"]), body


def test_job_page_logs_cancel_and_restart(live_engine: LiveEngine) -> None:
    """app/jobs/[id]/page.tsx: GET /jobs/{id} (header, buttons by state, execution rows); the Logs dialogs of
    components/job-logs.tsx and task-logs.tsx via /jobs/{id}/log and /tasks/{id}/log ?page=N&size=50, tailing a
    running job; components/cancel-job.tsx (PUT /jobs/{id}/cancel, shown for RUNNING/SCHEDULED) and
    restart-job.tsx (PUT /jobs/{id}/restart, shown for FAILED/CANCELLED), both reading a JSON answer."""
    http = live_engine.http
    run = "echo first line\nsleep 2\necho second line\nsleep 300"
    job_id = web_submit_ok(http, job_yaml("tailed " + word(), run, extra="description: a long one\n"))["id"]
    job = live_engine.wait_for(job_id, "RUNNING")
    assert isinstance(job["name"], str) and job["description"] == "a long one" and is_time(job["createdAt"])
    assert is_time(job["startedAt"]) and job.get("completedAt") is None and job.get("failedAt") is None
    task = poll_until(
        lambda: next((t for t in http.get(f"/jobs/{job_id}").json()["execution"] if t["state"] == "RUNNING"), None),
        60,
        "the task to run",
    )
    check_task_row(task)

    # The dialogs tail page 1 while the job runs: the newest line is shown first.
    def shown_both(path: str) -> str | None:
        shown, _ = web_job_log(http, path)
        return shown if "second line" in shown else None

    for path in (f"/jobs/{job_id}", f"/tasks/{task['id']}"):
        shown = poll_until(lambda p=path: shown_both(p), 60, f"both lines in {path}/log")  # type: ignore[misc]
        assert shown.index("second line") < shown.index("first line"), shown
    _, log = web_job_log(http, f"/jobs/{job_id}", page=2)
    assert log["items"] == [] and log["totalPages"] == 1  # the Previous Page button stays disabled

    running = [row for row in check_page(jobs_page(http, 1, "")) if row["id"] == job_id]
    assert running and running[0]["state"] == "RUNNING"  # the list shows its Cancel button
    put_json(http, f"/jobs/{job_id}/cancel")
    cancelled = live_engine.wait_for(job_id, "CANCELLED")
    for row in cancelled["execution"]:
        check_task_row(row)
    put_json(http, f"/jobs/{job_id}/restart")
    live_engine.wait_for(job_id, "RUNNING")
    put_json(http, f"/jobs/{job_id}/cancel")
    live_engine.wait_for(job_id, "CANCELLED")

    # A refused action still answers JSON: the proxies call res.json() before looking at the status.
    refused = http.put(f"/jobs/{job_id}/cancel")
    assert refused.status_code >= 400 and isinstance(refused.json()["message"], str)
    missing = http.get("/jobs/" + "f" * 32)
    assert missing.status_code == 404 and isinstance(missing.json()["message"], str)


def test_job_page_output_error_and_restart_of_failed(live_engine: LiveEngine) -> None:
    """app/jobs/[id]/page.tsx's Output column (task.error, else task.result) and Ended at (completedAt or
    failedAt); restart-job.tsx on a FAILED job runs its failed task again (a new execution row)."""
    http = live_engine.http
    text = (
        f"name: failing {word()}\ntasks:\n"
        f"  - name: makes a result\n    image: {TEST_IMAGE}\n    run: echo -n forty-two > $TORK_OUTPUT\n"
        f"  - name: fails\n    image: {TEST_IMAGE}\n    run: exit 3\n"
    )
    job_id = web_submit_ok(http, text)["id"]
    job = live_engine.wait_for(job_id, "FAILED")
    assert is_time(job["failedAt"]) and job.get("completedAt") is None
    rows = job["execution"]
    for row in rows:
        check_task_row(row)
    by_name = {row["name"]: row for row in rows}
    assert by_name["makes a result"]["result"] == "forty-two" and is_time(by_name["makes a result"]["completedAt"])
    assert by_name["fails"]["error"] and is_time(by_name["fails"]["failedAt"])
    put_json(http, f"/jobs/{job_id}/restart")
    poll_until(
        lambda: (j := http.get(f"/jobs/{job_id}").json())["state"] == "FAILED" and len(j["execution"]) == 3,
        60,
        "the restarted job to fail again with a third task row",
    )


def test_create_page_submits_yaml_and_shows_errors(live_engine: LiveEngine) -> None:
    """components/create-job.tsx through src/app/api/jobs/route.ts: the editor's YAML (its default template:
    a `var` task then one reading it from `tasks.myVar`) POSTed as text/yaml; success → /jobs/{id}, which then
    loads; an invalid document → the answer's status, and a JSON body the proxy can read."""
    http = live_engine.http
    text = f"""name: my job {word()}
tasks:
  - name: my first task
    var: myVar
    image: {TEST_IMAGE}
    run: |
      echo -n "Hello World" > $TORK_OUTPUT

  - name: my second task
    image: {TEST_IMAGE}
    run: |
      echo -n $MY_VAR > $TORK_OUTPUT
    env:
      MY_VAR: "{{{{ tasks.myVar }}}}"
"""
    job_id = web_submit_ok(http, text)["id"]
    page = http.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and page.json()["id"] == job_id
    job = live_engine.wait_for(job_id, "COMPLETED")
    assert [row["result"] for row in job["execution"]] == ["Hello World", "Hello World"]

    for bad in ("name: no tasks\ntasks: []\n", "name: [unclosed\n", "tasks:\n  - name: x\n    run: y\n"):
        response, data = web_submit(http, bad)
        assert 400 <= response.status_code < 500, response.text
        assert isinstance(data["message"], str) and data["message"], data


def duplicate_yaml(job: dict[str, Any]) -> str:
    """components/duplicate-job.tsx: the job read through /api/jobs/{id} (GET /jobs/{id}), these keys written
    back as YAML. A key the answer lacks is JS `undefined` and left out; a null stays null."""
    keys = ("name", "description", "tags", "inputs", "secrets", "output", "tasks", "defaults", "webhooks")
    return yaml.safe_dump({key: job[key] for key in keys if key in job}, sort_keys=False)


def test_duplicate_resubmits_the_job_as_read(live_engine: LiveEngine) -> None:
    """app/jobs/duplicate/page.tsx + components/duplicate-job.tsx: GET /jobs/{id}, its definition turned back
    into YAML (secrets as read: redacted) and submitted like the create page; the copy runs the same way. Both a
    job using every copied key and a bare one (name and tasks only)."""
    http = live_engine.http
    rich = f"""name: rich {word()}
description: copied along
tags: [dup]
inputs:
  greeting: hello
secrets:
  token: dup-secret-{uuid.uuid4().hex[:8]}
output: "{{{{ tasks.said }}}}"
defaults:
  timeout: 5m
tasks:
  - name: says
    var: said
    image: {TEST_IMAGE}
    env:
      GREETING: "{{{{ inputs.greeting }}}}"
    run: echo -n "$GREETING there" > $TORK_OUTPUT
"""
    bare = job_yaml("bare " + word(), "echo -n bare > $TORK_OUTPUT")
    for text in (rich, bare):
        original = live_engine.wait_for(web_submit_ok(http, text)["id"], "COMPLETED")
        copy_text = duplicate_yaml(original)
        assert "dup-secret" not in copy_text
        copy = live_engine.wait_for(web_submit_ok(http, copy_text)["id"])
        assert copy["state"] == "COMPLETED", copy
        assert copy["name"] == original["name"] and copy.get("result") == original.get("result")
        assert [t["result"] for t in copy["execution"]] == [t["result"] for t in original["execution"]]


def test_queues_and_nodes_pages(live_engine: LiveEngine) -> None:
    """app/queues/page.tsx: GET /queues, a list sorted by size then name: name, size, subscribers, unacked.
    app/nodes/page.tsx: GET /nodes, a list: id, name, hostname, version, uptime from startedAt (parseISO),
    cpuPercent, taskCount, status (UP is green)."""
    http = live_engine.http
    queues = http.get("/queues")
    assert queues.status_code == 200, queues.text
    assert isinstance(queues.json(), list) and queues.json(), queues.text
    for queue in queues.json():
        assert isinstance(queue["name"], str), queue
        for key in ("size", "subscribers", "unacked"):
            assert isinstance(queue[key], int), (key, queue)
    assert {"default", "other"} <= {queue["name"] for queue in queues.json()}

    nodes = http.get("/nodes")
    assert nodes.status_code == 200, nodes.text
    assert isinstance(nodes.json(), list) and nodes.json(), nodes.text
    for node in nodes.json():
        for key in ("id", "name", "hostname", "version", "status"):
            assert isinstance(node[key], str), (key, node)
        assert is_time(node["startedAt"]) and is_number(node["cpuPercent"]), node
        assert isinstance(node["taskCount"], int), node
    assert "UP" in {node["status"] for node in nodes.json()}


def scheduled_row(http: httpx.Client, scheduled_id: str) -> dict[str, Any] | None:
    """app/scheduled/page.tsx getData: GET /scheduled-jobs (no page or size), a Page of scheduled jobs."""
    response = http.get("/scheduled-jobs")
    assert response.status_code == 200, response.text
    rows = check_page(response.json())
    for row in rows:
        assert isinstance(row["id"], str) and isinstance(row["name"], str) and is_time(row["createdAt"]), row
        assert isinstance(row["cron"], str) and row["state"] in ("ACTIVE", "PAUSED", "DELETING"), row
    return next((row for row in rows if row["id"] == scheduled_id), None)


def test_scheduled_page_create_pause_resume_delete(live_engine: LiveEngine) -> None:
    """app/scheduled/page.tsx and its buttons: created from the create page (src/app/api/jobs/route.ts sends a
    document holding "cron" to POST /scheduled-jobs; create-job.tsx sees `cron` and goes to /jobs), listed
    (name, createdAt, cron, state ACTIVE/PAUSED), paused (pause-scheduled-job.tsx, PUT .../pause, shown when
    ACTIVE), resumed (resume-scheduled-job.tsx, PUT .../resume, shown when PAUSED), deleted
    (delete-scheduled-job.tsx, DELETE, any 2xx). Its instances show the "scheduled" badge in the jobs list."""
    http, w = live_engine.http, word()
    text = f"""name: nightly {w}
schedule:
  cron: "@every 1s"
tasks:
  - name: skipped
    if: "false"
    image: {TEST_IMAGE}
    run: echo never
"""
    created = web_submit_ok(http, text)
    assert created["cron"] == "@every 1s"
    scheduled_id = created["id"]
    row = scheduled_row(http, scheduled_id)
    assert row is not None and row["state"] == "ACTIVE" and row["name"] == f"nightly {w}", row

    instance = poll_until(lambda: check_page(jobs_page(http, 1, w)), 60, "a job made by the schedule")[0]
    check_job_row(instance)
    assert instance["schedule"], instance  # the "scheduled" badge

    put_json(http, f"/scheduled-jobs/{scheduled_id}/pause")
    assert (scheduled_row(http, scheduled_id) or {}).get("state") == "PAUSED"
    put_json(http, f"/scheduled-jobs/{scheduled_id}/resume")
    assert (scheduled_row(http, scheduled_id) or {}).get("state") == "ACTIVE"
    put_json(http, f"/scheduled-jobs/{scheduled_id}/pause")
    deleted = http.delete(f"/scheduled-jobs/{scheduled_id}")
    assert deleted.is_success, deleted.text
    poll_until(lambda: scheduled_row(http, scheduled_id) is None, 60, "the scheduled job to leave the list")

    # A schedule with a bad cron is refused with a JSON 400 the proxy can read.
    response, data = web_submit(http, text.replace("@every 1s", "not a cron"))
    assert response.status_code == 400 and isinstance(data["message"], str), data
