"""The UI with auth on: a sign-in page (password or key), each user sees only the jobs they may, and the
sign-in cookie cannot be used by another site (state-changing requests need the UI's header)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.integration.auth_api import AuthApi, auth_api
from tests.ui.conftest import ARTIFACTS, shot_name

pytestmark = pytest.mark.integration
expect.set_options(timeout=60_000)


@pytest.fixture(scope="module")
def api(live_engine: LiveEngine) -> Iterator[AuthApi]:
    with auth_api(live_engine) as running:
        yield running


@pytest.fixture
def tab(browser: Any, api: AuthApi, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(base_url=api.url)
    page = context.new_page()
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot_name(request)), full_page=True)
        context.close()


def _submit(http: httpx.Client, name: str, permissions: str = "") -> str:
    body = f"name: {name}\n{permissions}tasks:\n  - name: t\n    image: {TEST_IMAGE}\n    run: 'true'\n"
    response = http.post("/jobs", content=body, headers={"Content-Type": "text/yaml"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _sign_in(tab: Any, username: str, password: str) -> None:
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_in_and_see_only_what_the_user_may(tab: Any, api: AuthApi) -> None:
    alice, bob = api.new_user("alice"), api.new_user("bob")
    with api.client(auth=bob) as http:
        private = _submit(http, f"bobs-{api.tag}", f"permissions:\n  - user: {bob[0]}\n")
        public = _submit(http, f"open-{api.tag}")
    tab.goto(f"/ui/jobs/{public}")
    expect(tab).to_have_url(re.compile(r"/ui/login\?next="))  # no credentials: to the sign-in page
    _sign_in(tab, alice[0], "wrong password")
    expect(tab.locator(".error")).to_have_text("invalid username or password")
    _sign_in(tab, *alice)
    expect(tab).to_have_url(re.compile(f"/ui/jobs/{public}$"))  # back where she was going
    expect(tab.locator(".who")).to_contain_text(alice[0])
    tab.goto(f"/ui/?q={api.tag}")
    expect(tab.locator(f"#job-{public}")).to_be_visible()
    expect(tab.locator(f"#job-{private}")).to_have_count(0)  # bob's job is not listed to her
    tab.goto(f"/ui/jobs/{private}")
    expect(tab.locator(".error")).to_have_text("job not found")  # nor shown, as the API answers
    tab.goto(f"/ui/jobs/{public}")
    tab.get_by_role("button", name="Sign out").click()
    expect(tab).to_have_url(re.compile(r"/ui/login"))
    tab.goto("/ui/")
    expect(tab).to_have_url(re.compile(r"/ui/login"))


def test_sign_in_with_the_key_and_the_cookie_needs_the_ui_header(tab: Any, api: AuthApi) -> None:
    tab.goto("/ui/login")
    tab.get_by_label("API key").fill(api.key)
    tab.get_by_role("button", name="Sign in with the key").click()
    expect(tab.locator(".who")).to_contain_text("API key")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "tork_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    with api.as_admin() as http:
        job_id = _submit(http, f"keyed-{api.tag}")
    jar = {"tork_ui": cookie["value"]}
    with httpx.Client(base_url=api.url, cookies=jar, timeout=30) as browser_like:
        assert browser_like.get(f"/ui/jobs/{job_id}").status_code == 200
        # What a form on another site could send with the cookie: refused.
        assert browser_like.put(f"/ui/jobs/{job_id}/cancel").status_code == 403
        # The cookie is no credential for the API itself.
        assert browser_like.get(f"/jobs/{job_id}").status_code == 401
