"""Browser tests of the web UI: Debian's chromium, headless, driven by Playwright (PyPI; its own browser
download is never used), against the session's real engine, under uvicorn and under Ray Serve.

Every test leaves a screenshot of the page it ends on in test-artifacts/ui/ (gitignored), pass or fail."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.engine import LiveEngine, free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require(Path(CHROMIUM).exists(), f"Debian's chromium at {CHROMIUM} (scripts/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


# Session-scoped: one deployment for every module here (a deployment costs a controller, a proxy and a replica
# started, ~10 s and more under load); it stays up, idle, to the end of the session.
@pytest.fixture(scope="session")
def serve_url(live_engine: LiveEngine) -> Iterator[str]:
    """The same app as a Ray Serve deployment (auth off, as the session engine), for the UI tests."""
    from ray import serve

    from tork_ray.api.serve import deploy

    port = free_port()
    began = time.monotonic()
    deploy(live_engine.settings, host="127.0.0.1", port=port)
    print(f"Serve deployment ready in {time.monotonic() - began:.1f}s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()


@pytest.fixture(scope="module", params=["uvicorn", "serve"])
def base_url(request: pytest.FixtureRequest, live_engine: LiveEngine) -> str:
    if request.param == "serve":
        return str(request.getfixturevalue("serve_url"))
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
