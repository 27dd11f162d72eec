"""Scheduled jobs: the list with next fire times (live), create from YAML, pause, resume, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tork_ray.api import scheduled_jobs as api
from tork_ray.ui.calls import attempt, backend_of, caller_of
from tork_ray.ui.live import live
from tork_ray.ui.render import fragment, html, page
from tork_ray.ui.submit import refuse

router = APIRouter()
EXAMPLE = """name: nightly report
schedule:
  cron: "0 2 * * *"
tasks:
  - name: report
    image: alpine:latest
    run: echo report
"""


async def _rows(request: Request) -> str:
    b, caller = backend_of(request), await caller_of(request)
    number = request.query_params.get("page") or None
    listing, error = await attempt(api.list_scheduled, b, caller, page=number, size="20")
    return html("_scheduled_rows.html", listing=listing, error=error)


@router.get("/scheduled")
async def scheduled_page(request: Request) -> HTMLResponse:
    return page(request, "scheduled.html", rows=await _rows(request), query=str(request.url.query))


@router.get("/scheduled/events")
async def scheduled_events(request: Request) -> Response:
    async def render() -> dict[str, str]:
        return {"rows": await _rows(request)}

    return live(request, render)


@router.get("/scheduled/new")
async def new_page(request: Request) -> HTMLResponse:
    return page(request, "submit.html", document=EXAMPLE, error=None, action="/ui/scheduled", kind="scheduled")


@router.post("/scheduled")
async def create(request: Request) -> JSONResponse:
    """The editor posts text/yaml; this request is handed to POST /scheduled-jobs' handler."""
    b, caller = backend_of(request), await caller_of(request)
    summary, error = await attempt(api.create_scheduled_job, request, b, caller)
    if error is not None:
        return await refuse(request, b, error)
    return JSONResponse({"id": summary["id"], "location": "/ui/scheduled"})


@router.put("/scheduled/{scheduled_id}/{action}")
async def act(request: Request, scheduled_id: str, action: str) -> HTMLResponse:
    handlers = {"pause": api.pause_scheduled, "resume": api.resume_scheduled}
    if action not in handlers:
        return fragment("_notice.html", status_code=404, error="no such action")
    return await _do(request, handlers[action], scheduled_id, f"{action.title()} requested.")


@router.delete("/scheduled/{scheduled_id}")
async def delete(request: Request, scheduled_id: str) -> HTMLResponse:
    return await _do(request, api.delete_scheduled, scheduled_id, "Deleted.")


async def _do(request: Request, handler: object, scheduled_id: str, done: str) -> HTMLResponse:
    b, caller = backend_of(request), await caller_of(request)
    _, error = await attempt(handler, scheduled_id, b, caller)  # type: ignore[arg-type]
    return fragment("_notice.html", status_code=error.status_code if error else 200, error=error, done=done)
