"""The OpenAPI document: FastAPI's, plus the job document that POST /jobs reads by hand (JSON or YAML)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tork_ray.spec.models import JobInput

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
    """Replaces app.openapi with one that adds the JobInput schema (and the models it uses) to components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            job_input = JobInput.model_json_schema(by_alias=True, ref_template=_REF, mode="validation")
            schemas.update(job_input.pop("$defs", {}))
            schemas["JobInput"] = job_input
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
