"""The OpenAPI document: FastAPI's, plus the job document that POST /jobs reads by hand (JSON or YAML)."""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, Route

from tork_ray.api.schemas import ErrorOut
from tork_ray.spec.models import JobInput, ScheduledJobInput

_REF = "#/components/schemas/{model}"

# POST /jobs parses its body itself (YAML needs it), so FastAPI cannot see the model: describe it here.
JOB_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A Tork job document; unknown keys are rejected. `wait: {timeout}` makes the call block.",
        "content": {
            media: {"schema": {"$ref": _REF.format(model="JobInput")}}
            for media in ("application/json", "text/yaml", "application/x-yaml")
        },
    }
}


def install_openapi(app: FastAPI) -> None:
    """Replaces app.openapi with one that adds the JobInput schema (and the models it uses) to components,
    and FastAPI's /openapi.json route with one that builds the document off the event loop."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            job_input = JobInput.model_json_schema(by_alias=True, ref_template=_REF, mode="validation")
            schemas.update(job_input.pop("$defs", {}))
            schemas["JobInput"] = job_input
            scheduled = ScheduledJobInput.model_json_schema(by_alias=True, ref_template=_REF, mode="validation")
            schemas.update(scheduled.pop("$defs", {}))
            schemas["ScheduledJobInput"] = scheduled
            _document_our_400(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if app.openapi_url:
        _serve_off_the_loop(app, app.openapi_url)


def _document_our_400(document: dict[str, Any]) -> None:
    """FastAPI documents a 422 HTTPValidationError on every route with parameters; our handler answers a bad
    parameter with 400 {"message"} (errors.py), so that is what the document says instead."""
    error = {"description": "Bad request (the message says what)", **_json_of("ErrorOut")}
    for operation in (op for item in document.get("paths", {}).values() for op in item.values()):
        responses = operation.get("responses", {})
        if responses.pop("422", None) is not None:
            responses.setdefault("400", error)
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema(by_alias=True, ref_template=_REF))


def _json_of(model: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}}


def _serve_off_the_loop(app: FastAPI, url: str) -> None:
    # FastAPI's own route builds the document on the event loop on first call: ~0.5 s here, during which
    # nothing else is served. Ours builds and renders it once on the thread pool, then sends the same bytes.
    @functools.cache
    def rendered() -> bytes:
        return json.dumps(app.openapi(), ensure_ascii=False, separators=(",", ":")).encode()

    async def openapi_json(request: Request) -> Response:
        content = await request.app.state.backend.offload(rendered)
        return Response(content, media_type="application/json")

    routes: list[BaseRoute] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path == url)]
    app.router.routes = [*routes, Route(url, openapi_json, include_in_schema=False)]
