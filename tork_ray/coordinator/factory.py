"""New job and task records: a validated document made into a stored job, a definition into a task instance."""

from __future__ import annotations

from typing import Any

from tork_ray.coordinator.request import apply_defaults
from tork_ray.domain.evaluate import each_item_context, evaluate_task, job_context
from tork_ray.domain.models import GUEST, ITEM_KEY, Job, Task, User, utcnow
from tork_ray.domain.redact import secret_values
from tork_ray.domain.states import TaskState
from tork_ray.errors import ExpressionError
from tork_ray.settings import LimitsSettings
from tork_ray.spec.models import JobInput, to_dict


def new_job(
    spec: JobInput,
    created_by: User | None,
    parent_id: str | None,
    with_job_namespace: bool = True,
    job_id: str | None = None,
) -> Job:
    """A PENDING job record from a validated job document, its context ready; `job_id` if the caller chose the id
    (a router that picks a coordinator shard by id, benchmarks/sharding_bench.py), else a new one."""
    body = to_dict(spec)
    job = Job(
        name=spec.name,
        description=spec.description,
        tags=list(spec.tags or []),
        parent_id=parent_id,
        created_by=created_by or GUEST,
        task_count=len(spec.tasks),
        inputs=dict(spec.inputs or {}),
        secrets=dict(spec.secrets or {}),
        tasks=body["tasks"],
        output=spec.output,
        defaults=body.get("defaults"),
        webhooks=body.get("webhooks"),
        permissions=body.get("permissions"),
        auto_delete=body.get("autoDelete"),
    )
    if job_id:
        job.id = job_id
    job.context = job_context(job.id, job.name, job.inputs, job.secrets, {}, with_job=with_job_namespace)
    return job


def inherited_secrets(parent: Job, subjob: dict[str, Any]) -> list[str]:
    """The parent's secret values that its context rendered into a sub-job's name, description, inputs and
    webhooks (SPEC §3.4): the sub-job must hide them wherever it is shown, though they are not its secrets."""
    texts: list[str] = []
    stack: list[Any] = [subjob.get(key) for key in ("name", "description", "inputs", "webhooks")]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    known = secret_values(parent.secrets) | set(parent.hidden)
    return sorted(value for value in known if any(value in text for text in texts))


def new_task(
    job: Job,
    definition: dict[str, Any],
    position: int,
    parent_id: str | None = None,
    context: dict[str, Any] | None = None,
    state: TaskState = TaskState.PENDING,
    limits: LimitsSettings | None = None,
) -> Task:
    """A task instance of `definition`, evaluated now within `limits`; FAILED with the error if evaluation fails."""
    try:
        spec = evaluate_task(definition, context if context is not None else job.context, limits=limits)
    except ExpressionError as exc:
        return Task(
            job_id=job.id,
            parent_id=parent_id,
            position=position,
            name=str(definition.get("name", "")),
            state=TaskState.FAILED,
            error=exc.message,
            failed_at=utcnow(),
            spec=dict(definition),
        )
    spec = apply_defaults(spec, job.defaults)
    return Task(
        job_id=job.id,
        parent_id=parent_id,
        position=position,
        name=str(spec.get("name", "")),
        state=state,
        queue=str(spec.get("queue") or "default"),
        priority=int(spec.get("priority") or 0),
        spec=spec,
    )


def task_context(job: Job, task: Task) -> dict[str, Any]:
    """What a task's templates see: the job's context, plus the item for an each child."""
    item = task.spec.get(ITEM_KEY)
    if item is None:
        return job.context
    return each_item_context(job.context, item.get("var"), int(item["index"]), item.get("value"))
