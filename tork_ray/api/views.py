"""What the API shows of stored records: each body built and redacted in one place, for every route."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from tork_ray.api.backend import Backend
from tork_ray.domain.models import Job, Task
from tork_ray.errors import NotFound, TorkError


def page_body(items: list[Any], number: int, size: int, total: int) -> dict[str, Any]:
    """Tork's page: `size` is the number of items returned; `totalPages` counts pages of the requested size."""
    return {
        "items": items,
        "number": number,
        "size": len(items),
        "totalPages": math.ceil(total / size) if size else 0,
        "totalItems": total,
    }


def load_job(b: Backend, job_id: str) -> Job:
    job = b.store.get_job(job_id)
    if job is None:
        raise NotFound("job not found")
    return job


def load_task(b: Backend, task_id: str) -> Task:
    task = b.store.get_task(task_id)
    if task is None:
        raise NotFound("task not found")
    return task


def job_hidden(b: Backend, job: Job, specs: Iterable[Mapping[str, Any]] | None = None) -> list[str]:
    """Every value to hide in anything shown of `job`: its secrets, and values under secret-looking keys in the
    job document and in its tasks' evaluated definitions (an env value rendered from an input, say)."""
    if specs is None:
        specs = b.store.task_specs([job.id]).get(job.id, [])
    return b.redactor.hidden_values(job.model_dump(mode="json", by_alias=True), *specs) + job.hidden


def redacted(b: Backend, body: Any, hidden: list[str]) -> Any:
    return b.redactor.redact(body, hidden)


def job_view(b: Backend, job: Job) -> dict[str, Any]:
    body = job.public(b.store.job_tasks(job.id))
    # The full body carries the secrets, the context and every evaluated task: it names all there is to hide.
    return redacted(b, body, b.redactor.hidden_values(body) + job.hidden)


def full_job_view(b: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """A full job body built elsewhere (the coordinator's `wait` answer)."""
    return redacted(b, body, b.redactor.hidden_values(body))


def summary_views(b: Backend, jobs: list[Job]) -> list[dict[str, Any]]:
    # Only a summary's result or error can carry a value rendered into a task; other jobs need no task specs.
    specs = b.store.task_specs([job.id for job in jobs if job.result or job.error])
    return [redacted(b, job.summary(), job_hidden(b, job, specs.get(job.id, []))) for job in jobs]


def task_view(b: Backend, task: Task) -> dict[str, Any]:
    job = load_job(b, task.job_id)
    return redacted(b, task.public(), job_hidden(b, job))


def log_page_view(
    b: Backend, job: Job, parts: list[dict[str, Any]], number: int, size: int, total: int
) -> dict[str, Any]:
    """A page of log parts with every secret hidden, even one cut in two by the worker's once-a-second flush:
    each run of consecutive parts is redacted together with the parts just outside the page."""
    hidden = job_hidden(b, job)
    if b.redactor.enabled and hidden and parts:
        texts = {(p["taskId"], p["number"]): p["contents"] for p in parts}
        texts_with_context = {**b.store.neighbour_parts(parts), **texts}
        redacted_texts = _redact_runs(b, texts_with_context, hidden)
        parts = [{**p, "contents": redacted_texts[(p["taskId"], p["number"])]} for p in parts]
    return page_body(parts, number, size, total)


def _redact_runs(b: Backend, texts: dict[tuple[str, int], str], hidden: list[str]) -> dict[tuple[str, int], str]:
    by_task: dict[str, list[int]] = defaultdict(list)
    for task_id, number in texts:
        by_task[task_id].append(number)
    out: dict[tuple[str, int], str] = {}
    for task_id, numbers in by_task.items():
        for run in _consecutive(sorted(numbers)):
            pieces = b.redactor.redact_parts([texts[(task_id, n)] for n in run], hidden)
            out.update({(task_id, n): piece for n, piece in zip(run, pieces, strict=True)})
    return out


def _consecutive(numbers: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return runs


def redacted_error(b: Backend, exc: TorkError, document: Any) -> TorkError:
    """The same error with any secret of the (possibly invalid) submitted document hidden from its message."""
    hidden = b.redactor.hidden_values(document)
    message = b.redactor.redact_text(exc.message, hidden)
    if message == exc.message:
        return exc
    clean = TorkError(message)
    clean.status_code = exc.status_code
    return clean
