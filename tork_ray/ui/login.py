"""Sign in (username and password, or the API key) and sign out, when auth is on."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tork_ray.api.authn import Authenticator, Refusal
from tork_ray.ui import session
from tork_ray.ui.render import page

router = APIRouter()


def _next(target: str) -> str:
    # Only a path of the UI itself: never an open redirect to another site.
    return target if session.in_ui(target) and not target.startswith("//") else "/ui/"


@router.get("/login")
async def login_page(request: Request) -> Response:
    if request.app.state.authenticator is None:
        return RedirectResponse("/ui/", status_code=303)
    settings = request.app.state.backend.settings.auth
    return page(request, "login.html", next=_next(request.query_params.get("next", "")), auth=settings, error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    authenticator: Authenticator | None = request.app.state.authenticator
    if authenticator is None:
        return RedirectResponse("/ui/", status_code=303)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    if form.get("key"):
        authorization = f"Bearer {form['key']}"
    else:
        pair = f"{form.get('username', '')}:{form.get('password', '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode()
    client = request.client.host if request.client else "-"
    result = await authenticator.authenticate(authorization, client)
    target = _next(form.get("next", ""))
    if isinstance(result, Refusal):
        settings = request.app.state.backend.settings.auth
        # A wrong login re-shows the form (200; a 401 must carry a challenge, which would pop up the browser's
        # own basic-auth dialog); too many failures stay a 429.
        status = 429 if result.status == 429 else 200
        return page(request, "login.html", status_code=status, next=target, auth=settings, error=result)
    response = RedirectResponse(target, status_code=303)
    session.remember(response, authorization, secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout() -> RedirectResponse:
    response = RedirectResponse(session.LOGIN, status_code=303)
    response.delete_cookie(session.COOKIE, path="/ui")
    return response
