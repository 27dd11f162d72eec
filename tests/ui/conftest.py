"""Browser tests of the web UI: Debian's chromium, headless, driven by Playwright (PyPI; its own browser
download is never used), against the session's real engine, under uvicorn and under Ray Serve.

Every test leaves a screenshot of the page it ends on in test-artifacts/ui/ (gitignored), pass or fail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServeApp, require
from tests.engine import LiveEngine

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


# Package scope: sync_playwright runs an asyncio loop in this thread while it lives, and later tests that call
# asyncio.run() (tests/unit) would find it running.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    require(Path(CHROMIUM).exists(), f"Debian's chromium at {CHROMIUM} (scripts/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=["uvicorn", "serve"])
def base_url(request: pytest.FixtureRequest, live_engine: LiveEngine) -> str:
    if request.param == "serve":  # the same app as a Ray Serve deployment (auth off, as the session engine)
        serve_app: ServeApp = request.getfixturevalue("serve_app")
        return serve_app.url_for(live_engine.settings)
    return str(live_engine.http.base_url).rstrip("/")


def shot_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^\w.-]+", "_", request.node.name) + ".png"


@pytest.fixture
def page(browser: Any, base_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=str(ARTIFACTS / shot_name(request)), full_page=True)
        finally:
            context.close()
