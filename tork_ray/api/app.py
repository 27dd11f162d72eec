"""create_app(): the one FastAPI app, served by uvicorn (standalone) or Ray Serve (cluster)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from tork_ray import __version__
from tork_ray.api import jobs, metrics, nodes, queues, scheduled_jobs, system, tasks, users
from tork_ray.api.admin import ensure_admin
from tork_ray.api.authn import Authenticator, with_key
from tork_ray.api.backend import Backend
from tork_ray.api.errors import install_error_handlers
from tork_ray.api.middleware import install_middleware
from tork_ray.api.openapi import install_openapi
from tork_ray.domain.redact import Redactor
from tork_ray.settings import Settings
from tork_ray.store.store import Store, open_store
from tork_ray.ui.mount import install_ui

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


log = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    backend: Backend = app.state.backend
    try:
        await ensure_admin(backend, backend.settings.auth)
    except Exception as exc:  # the API still serves; the operator reads why the admin is missing
        log.error("could not set up the admin user: %s", type(exc).__name__)
    yield


def create_app(settings: Settings, coordinator: Any, store: Store | None = None) -> FastAPI:
    """The API over a running coordinator actor; reads go straight to the store, writes to the actor."""
    settings = with_key(settings)  # a no-op when the entry point already resolved the key (deploy, serve)
    app = FastAPI(title="tork_ray", version=__version__, description="Tork's REST API, on Ray.", lifespan=_lifespan)
    app.state.backend = backend = Backend(
        settings=settings,
        store=store or open_store(settings),
        coordinator=coordinator,
        redactor=Redactor(patterns=settings.api.redact_patterns, enabled=settings.api.redact_enabled),
    )
    install_error_handlers(app)
    authenticator = (
        Authenticator(settings.auth, backend.store, backend.offload, coordinator) if settings.auth.enabled else None
    )
    app.state.authenticator = authenticator
    install_middleware(app, settings.api, authenticator)
    for name, router in ROUTERS.items():
        if name not in settings.api.disabled_endpoints:
            app.include_router(router)
            for more in ALSO.get(name, ()):
                app.include_router(more)
    if "ui" not in settings.api.disabled_endpoints:  # the web UI at /ui (tork_ray/ui/), on by default
        install_ui(app)
    install_openapi(app)
    return app
