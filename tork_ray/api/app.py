"""create_app(): the one FastAPI app, served by uvicorn (standalone) or Ray Serve (cluster)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from tork_ray import __version__
from tork_ray.api import jobs, metrics, nodes, queues, scheduled_jobs, system, tasks, users
from tork_ray.api.backend import Backend
from tork_ray.api.errors import install_error_handlers
from tork_ray.api.middleware import install_middleware
from tork_ray.api.openapi import install_openapi
from tork_ray.domain.redact import Redactor
from tork_ray.settings import Settings
from tork_ray.store.store import Store, open_store

# coordinator.api.endpoints.<name> -> the routes it turns on or off (SPEC §7).
ROUTERS: dict[str, APIRouter] = {
    "health": system.router,
    "jobs": jobs.router,
    "tasks": tasks.router,
    "queues": queues.router,
    "nodes": nodes.router,
    "metrics": metrics.router,
    "users": users.router,
}
# More routers under the same toggle (SPEC §7: `jobs` also covers scheduled jobs).
ALSO: dict[str, tuple[APIRouter, ...]] = {"jobs": (scheduled_jobs.router,)}


def create_app(settings: Settings, coordinator: Any, store: Store | None = None) -> FastAPI:
    """The API over a running coordinator actor; reads go straight to the store, writes to the actor."""
    app = FastAPI(title="tork_ray", version=__version__, description="Tork's REST API, on Ray.")
    app.state.backend = Backend(
        settings=settings,
        store=store or open_store(settings),
        coordinator=coordinator,
        redactor=Redactor(patterns=settings.api.redact_patterns, enabled=settings.api.redact_enabled),
    )
    install_error_handlers(app)
    install_middleware(app, settings.api)
    for name, router in ROUTERS.items():
        if name not in settings.api.disabled_endpoints:
            app.include_router(router)
            for more in ALSO.get(name, ()):
                app.include_router(more)
    install_openapi(app)
    return app
