"""Submitting from the YAML editor (the 400's problems at the lines they name), scheduled jobs (create, pause,
resume, delete) and the queues and nodes page, in a real browser."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.ui.conftest import ARTIFACTS, shot_name

pytestmark = pytest.mark.integration
expect.set_options(timeout=60_000)

INVALID = f"""name: broken
tasks:
  - name: fine
    image: {TEST_IMAGE}
    run: 'true'
  - name: late
    image: {TEST_IMAGE}
    timeout: soon
    run: 'true'
"""


def test_submit_invalid_then_valid_yaml(page: Any, live_engine: LiveEngine, request: pytest.FixtureRequest) -> None:
    page.goto("/ui/submit")
    editor = page.locator("textarea#yaml")
    editor.fill(INVALID)
    page.get_by_role("button", name="Submit").click()
    problem = page.locator("#problems .problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("tasks[1].timeout is not a valid duration")
    expect(problem).to_have_attribute("data-line", "8")  # the line of `timeout: soon`
    expect(page.locator(".gutter .bad")).to_have_text("8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / ("invalid_" + shot_name(request))))  # the problem at its line
    # A YAML syntax error is placed at the line the parser names.
    editor.fill("name: x\ntasks: [\n")
    page.get_by_role("button", name="Submit").click()
    expect(problem).to_contain_text("yaml: line")
    name = f"from-editor-{uuid.uuid4().hex[:8]}"
    editor.fill(INVALID.replace("broken", name).replace("    timeout: soon\n", ""))
    editor.press("Control+Enter")  # the keyboard way to submit
    expect(page).to_have_url(re.compile(r"/ui/jobs/[0-9a-f]+$"))
    expect(page.locator(".job-head h1")).to_have_text(name)
    expect(page.locator("#job-state")).to_have_text("COMPLETED")


def test_scheduled_job_create_pause_resume_delete(page: Any, live_engine: LiveEngine) -> None:
    name = f"every-minute-{uuid.uuid4().hex[:8]}"
    page.goto("/ui/scheduled")
    page.get_by_role("link", name="New scheduled job").click()
    page.locator("textarea#yaml").fill(
        f"name: {name}\nschedule:\n  cron: '0 0 1 1 *'\ntasks:\n  - name: t\n    image: {TEST_IMAGE}\n    run: 'true'\n"
    )
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/ui/scheduled$"))
    row = page.locator("tr", has_text=name)
    expect(row).to_have_attribute("data-state", "ACTIVE")
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"\d{4}-01-01 00:00:00"))
    row.get_by_role("button", name="Pause").click()
    expect(row).to_have_attribute("data-state", "PAUSED")  # the list follows live
    expect(row.locator("td").nth(3)).to_have_text("")
    row.get_by_role("button", name="Resume").click()
    expect(row).to_have_attribute("data-state", "ACTIVE")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)


def test_queues_nodes_and_charts(page: Any, live_engine: LiveEngine) -> None:
    page.goto("/ui/cluster")
    expect(page.locator("#queue-default td").nth(2)).to_have_text("2")  # the session engine's slots
    expect(page.locator("#queue-other td").nth(2)).to_have_text("1")
    expect(page.locator("table.nodes tbody tr")).to_have_count(1)
    expect(page.locator("table.nodes .state")).to_have_text("UP")
    expect(page.locator(".chart svg polyline")).to_have_count(2)
    expect(page.get_by_role("img", name=re.compile("Tasks per second over the last hour"))).to_be_visible()
