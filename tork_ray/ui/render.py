"""Jinja2 rendering of the UI's pages and fragments (autoescaped: every value from a job is text, never HTML)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tork_ray import __version__
from tork_ray.api.access import SCOPE_KEY, Caller

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATES = ("PENDING", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def took(item: dict[str, Any]) -> str:
    """How long a job or task ran (so far, when it still runs)."""
    start = parse_time(item.get("startedAt"))
    if start is None:
        return ""
    end = parse_time(item.get("completedAt") or item.get("failedAt")) or datetime.now(UTC)
    return duration((end - start).total_seconds())


def short_time(value: str | None) -> str:
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def page_links(number: int, total: int, around: int = 2) -> list[int | None]:
    """Page numbers to link: the first, the last and those near the current one; None marks a gap."""
    if total < 1:
        return []
    keep = sorted({1, total, *range(max(number - around, 1), min(number + around, total) + 1)})
    out: list[int | None] = []
    for n in keep:
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


env.filters.update(took=took, short_time=short_time, duration=duration)
env.globals.update(version=__version__, states=STATES, page_links=page_links)


def caller_of_scope(request: Request) -> Caller | None:
    caller: Caller | None = request.scope.get(SCOPE_KEY)
    return caller


def html(name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A whole page: the template `name` inside base.html, with who is signed in (when auth is on)."""
    caller = caller_of_scope(request)
    auth_on = request.app.state.authenticator is not None
    body = html(name, request=request, caller=caller, auth_on=auth_on, path=request.url.path, **context)
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


def fragment(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(html(name, **context), status_code=status_code, headers={"Cache-Control": "no-store"})
