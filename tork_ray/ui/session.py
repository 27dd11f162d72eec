"""How a browser stays signed in to the UI, read by the auth middleware (tork_ray/api/middleware/auth.py).

The login form checks the credentials with the API's Authenticator (same rate limits on failures) and keeps
the Authorization value it would send in an HttpOnly, SameSite=Strict cookie, the way a browser keeps basic
credentials: every request is then authenticated exactly as an API call (a changed password or a disabled
user is refused at once; the verified-login cache spares the scrypt). The cookie counts only under /ui; a
state-changing request must also carry the X-Tork-UI header (htmx and the editor send it, a form on another
site cannot), so the cookie cannot be used across sites."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import quote, unquote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Scope

COOKIE = "tork_ui"
UI_HEADER = "x-tork-ui"
SAFE_METHODS = frozenset({"GET", "HEAD"})
OPEN_PATHS = frozenset({"/ui/login", "/ui/logout"})
LOGIN = "/ui/login"


def in_ui(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def open_to_all(path: str) -> bool:
    """The sign-in page, signing out, and the static assets need no credentials."""
    return path in OPEN_PATHS or path.startswith("/ui/static/")


def cookie_authorization(scope: Scope) -> str | None:
    cookies = SimpleCookie(Headers(scope=scope).get("cookie", ""))
    morsel = cookies.get(COOKIE)
    return unquote(morsel.value) if morsel and morsel.value else None


def ui_authorization(scope: Scope) -> tuple[str | None, Response | None]:
    """The Authorization value of a UI request (header, else the cookie), or the answer to give instead (a
    page without credentials goes to the sign-in page)."""
    headers = Headers(scope=scope)
    if authorization := headers.get("authorization"):
        return authorization, None
    authorization = cookie_authorization(scope)
    if authorization is None:
        # A page is sent to the sign-in page; anything else gets the API's own 401 (with its challenge).
        return None, to_login(scope) if scope["method"] in SAFE_METHODS else None
    if scope["method"] not in SAFE_METHODS and not headers.get(UI_HEADER):
        return None, JSONResponse({"message": "a UI request must carry the X-Tork-UI header"}, status_code=403)
    return authorization, None


def to_login(scope: Scope) -> Response:
    response = RedirectResponse(f"{LOGIN}?next={quote(scope['path'])}", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def remember(response: Response, authorization: str, secure: bool) -> None:
    # A session cookie (no max-age): gone when the browser ends its session.
    response.set_cookie(COOKIE, quote(authorization, safe=""), path="/ui", httponly=True, samesite="strict",
                        secure=secure)  # fmt: skip
