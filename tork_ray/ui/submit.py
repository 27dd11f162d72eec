"""Submit a job from a YAML editor: the document goes to POST /jobs' own handler; a 400 comes back with each
problem placed at the line of the field it names; a duplicate starts from a job's (redacted) definition."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from tork_ray.api import jobs as jobs_api
from tork_ray.api.backend import Backend
from tork_ray.domain.redact import REDACTED
from tork_ray.errors import TorkError, ValidationFailed
from tork_ray.ui.calls import attempt, backend_of, caller_of
from tork_ray.ui.render import page
from tork_ray.ui.yamlpos import locate

router = APIRouter()

# What a job document holds (SPEC §1.1), in the order a person writes it: a duplicate keeps these fields.
DEFINITION = ("name", "description", "tags", "inputs", "secrets", "output", "defaults", "webhooks",
              "permissions", "autoDelete", "tasks")  # fmt: skip
EXAMPLE = """name: hello
description: a first job
tags: [demo]
inputs:
  greeting: hello
tasks:
  - name: say it
    image: alpine:latest
    env:
      GREETING: "{{ inputs.greeting }}"
    run: echo "$GREETING, world"
"""


def definition_yaml(job: dict[str, Any]) -> str:
    """A job's definition as YAML to submit again. Its secrets are redacted (never sent to a browser): they
    come back as placeholders to fill in."""
    body = {key: job[key] for key in DEFINITION if job.get(key) not in (None, "", [], {})}
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
    if REDACTED in text:
        text = f"# Values shown as {REDACTED} are secrets: type them in again before submitting.\n" + text
    return text


@router.get("/submit")
async def submit_page(request: Request) -> HTMLResponse:
    document, error = EXAMPLE, None
    if source := request.query_params.get("from"):
        b, caller = backend_of(request), await caller_of(request)
        job, error = await attempt(jobs_api.get_job, source, b, caller)
        if job is not None:
            document = definition_yaml(job)
    return page(request, "submit.html", document=document, error=error, action="/ui/submit", kind="job")


def refusal(error: TorkError, document: str) -> JSONResponse:
    """The API's refusal, as JSON the editor shows: the message and each problem at its line."""
    problems = error.problems if isinstance(error, ValidationFailed) else error.message.split("\n")
    body = {"message": error.message, "problems": locate(document, problems)}
    return JSONResponse(body, status_code=error.status_code)


async def refuse(request: Request, b: Backend, error: TorkError) -> JSONResponse:
    """refusal() of this request's document, off the event loop (YAML of up to the body limit is composed)."""
    return await b.offload(refusal, error, (await request.body()).decode("utf-8", "replace"))


@router.post("/submit")
async def submit(request: Request) -> JSONResponse:
    """The editor posts the document as text/yaml; this very request is handed to POST /jobs' handler."""
    b, caller = backend_of(request), await caller_of(request)
    summary, error = await attempt(jobs_api.submit_job, request, b, caller)
    if error is not None:
        return await refuse(request, b, error)
    return JSONResponse({"id": summary["id"], "location": f"/ui/jobs/{summary['id']}"})
