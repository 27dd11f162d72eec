"""install_ui(): the UI's routes and static files on the API's app, and `/` sending a browser to /ui/."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from tork_ray.ui import cluster, jobs, login, scheduled, submit
from tork_ray.ui.render import STATIC_DIR

PREFIX = "/ui"


def install_ui(app: FastAPI) -> None:
    """Mounts the UI on `app` (uvicorn or a Ray Serve replica alike); `/` sends a browser to it."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="ui-static")
    for module in (jobs, submit, scheduled, cluster, login):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)
