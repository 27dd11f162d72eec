"""The jobs list and a job's page in a real browser: live rows, search, the task tree, a running task's log
followed live, cancel, restart, duplicate (secrets never reach the page)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine

pytestmark = pytest.mark.integration
expect.set_options(timeout=60_000)  # expect polls until its deadline, then fails the test


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_root_sends_a_browser_to_the_ui_and_rows_update_live(page: Any, live_engine: LiveEngine, base_url: str) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/$"))
    expect(page.locator("#counts .counts")).to_be_visible()
    name = unique("live")
    # Submitted after the page loaded: the row appears, then turns COMPLETED, with no reload.
    submitted = time.monotonic()
    job_id = live_engine.submit(f"name: {name}\ntasks:\n  - name: t\n    image: {TEST_IMAGE}\n    run: echo hi\n")["id"]
    row = page.locator(f"#job-{job_id}")
    expect(row).to_be_visible()
    print(f"a submitted job appeared in the open list after {time.monotonic() - submitted:.2f}s")  # a figure
    expect(row).to_have_attribute("data-state", "COMPLETED")
    expect(row.locator("a")).to_have_text(name)
    # Everything came from the engine itself (htmx too): nothing from a CDN, so the UI works offline.
    assert requested and all(url.startswith(base_url + "/") for url in requested), requested


def test_dark_and_narrow(page: Any, live_engine: LiveEngine) -> None:
    page.goto("/ui/")
    background = "getComputedStyle(document.documentElement).backgroundColor"
    light = page.evaluate(background)
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) != light  # prefers-color-scheme: dark gets the dark theme
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Tab")  # the first stop is the skip link, then the navigation
    expect(page.locator(".skip")).to_be_focused()


def test_search_by_words_tags_and_state(page: Any, live_engine: LiveEngine) -> None:
    word, tag = unique("needle"), unique("tag")
    tasks = f"tasks:\n  - name: t\n    image: {TEST_IMAGE}\n    run: 'true'\n"
    hit = live_engine.submit(f"name: {word}\ntags: [{tag}]\n{tasks}")
    miss = live_engine.submit(f"name: {unique('hay')}\n{tasks}")
    live_engine.wait_for(hit["id"])
    live_engine.wait_for(miss["id"])
    page.goto("/ui/")
    page.get_by_label("Search").fill(word)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(f"#job-{hit['id']}")).to_be_visible()
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    page.get_by_label("Search").fill("")
    page.get_by_label("Tags").fill(tag)
    page.get_by_label("State").select_option("COMPLETED")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(f"#job-{hit['id']}")).to_be_visible()
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    page.get_by_label("State").select_option("FAILED")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".empty")).to_have_text("No jobs match.")


def _long_job(name: str, seconds: int = 120) -> str:
    return f"name: {name}\ntasks:\n  - name: wait\n    image: {TEST_IMAGE}\n    run: sleep {seconds}\n"


def test_open_a_job_and_follow_a_running_tasks_log(page: Any, live_engine: LiveEngine) -> None:
    # A parallel task with two children (shown under it), one of which prints a line a second for a while.
    body = f"""name: {unique("follow")}
secrets:
  token: s3cr3t-{uuid.uuid4().hex}
tasks:
  - name: both
    parallel:
      tasks:
        - name: talker
          image: {TEST_IMAGE}
          run: for i in $(seq 1 8); do echo "tick-$i"; sleep 1; done
        - name: quiet
          image: {TEST_IMAGE}
          run: 'true'
"""
    secret = body.split("token: ")[1].split("\n")[0]
    job_id = live_engine.submit(body)["id"]
    page.goto("/ui/")
    page.locator(f"#job-{job_id} a").click()
    expect(page).to_have_url(re.compile(f"/ui/jobs/{job_id}$"))
    talker = page.locator("tr", has_text="talker")
    expect(talker).to_have_attribute("data-state", "RUNNING")
    # The tree: the children are indented under `both`, marked as a parallel task.
    expect(page.locator("tr", has_text="both").locator(".kind")).to_have_text("parallel")
    talker.get_by_role("button", name="Log").click()
    expect(page.locator("#log")).to_contain_text("tick-1")
    assert "tick-8" not in page.locator("#log").text_content()  # followed while it runs, not read after
    expect(page.locator("#log")).to_contain_text("tick-8")
    expect(page.locator("#log-state")).to_have_text("ended: COMPLETED")
    expect(page.locator("#job-state")).to_have_text("COMPLETED")
    expect(page.locator(".timeline .bar")).to_have_count(3)
    assert secret not in page.content()
    assert "[REDACTED]" in page.locator(".inputs").text_content()


def test_cancel_restart_and_duplicate(page: Any, live_engine: LiveEngine) -> None:
    name = unique("control")
    job_id = live_engine.submit(_long_job(name))["id"]
    live_engine.wait_for(job_id, "RUNNING")
    page.goto(f"/ui/jobs/{job_id}")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#notice")).to_have_text("Cancel requested.")
    expect(page.locator("#job-state")).to_have_text("CANCELLED")
    page.get_by_role("button", name="Restart").click()
    expect(page.locator("#notice")).to_have_text("Restart requested.")
    expect(page.locator("#job-state")).to_have_text("RUNNING")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-state")).to_have_text("CANCELLED")
    # A refusal shows the API's message where the action was taken: a cancelled job cannot be cancelled.
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#notice .error")).to_be_visible()
    page.get_by_role("link", name="Duplicate").click()
    expect(page.locator("textarea#yaml")).to_have_value(re.compile(f"name: {name}"))
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(f"/ui/jobs/(?!{job_id})[0-9a-f]+$"))
    copy_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#job-state")).to_have_text("RUNNING")
    live_engine.http.put(f"/jobs/{copy_id}/cancel")
    live_engine.wait_for(copy_id)


def test_a_sub_jobs_tasks_sit_under_the_task_that_made_it(page: Any, live_engine: LiveEngine) -> None:
    body = f"""name: {unique("parent")}
tasks:
  - name: attached
    subjob:
      name: child job
      tasks:
        - name: inner step
          image: {TEST_IMAGE}
          run: echo from the child
"""
    job_id = live_engine.submit(body)["id"]
    live_engine.wait_for(job_id)
    page.goto(f"/ui/jobs/{job_id}")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("attached")
    expect(rows.nth(0).locator(".kind")).to_have_text("subjob")
    expect(rows.nth(1)).to_contain_text("inner step")  # the child's task, under the sub-job task
    expect(rows.nth(1)).to_have_attribute("data-state", "COMPLETED")
    rows.nth(1).get_by_role("button", name="Log").click()
    expect(page.locator("#log")).to_contain_text("from the child")
    rows.nth(0).get_by_role("link", name="sub-job").click()
    expect(page.locator(".job-head h1")).to_have_text("child job")
