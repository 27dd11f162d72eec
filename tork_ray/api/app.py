"""create_app(): the one FastAPI app, served by uvicorn (standalone) or Ray Serve (cluster)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tork_ray import __version__
from tork_ray.api import jobs, system, tasks
from tork_ray.api.backend import Backend
from tork_ray.api.errors import install_error_handlers
from tork_ray.domain.redact import Redactor
from tork_ray.settings import Settings
from tork_ray.store.store import Store


def create_app(settings: Settings, coordinator: Any, store: Store | None = None) -> FastAPI:
    """The API over a running coordinator actor; reads go straight to the store, writes to the actor."""
    app = FastAPI(title="tork_ray", version=__version__, description="Tork's REST API, on Ray.")
    app.state.backend = Backend(
        settings=settings,
        store=store or Store(settings.store_url),
        coordinator=coordinator,
        redactor=Redactor(patterns=settings.api.redact_patterns, enabled=settings.api.redact_enabled),
    )
    install_error_handlers(app)
    for module in (system, jobs, tasks):
        app.include_router(module.router)
    return app
