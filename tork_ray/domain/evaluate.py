"""Templating of a task definition against a job's context (SPEC §3.4), and the contexts themselves."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tork_ray.errors import ExpressionError
from tork_ray.expr import Budget, render
from tork_ray.settings import LimitsSettings

# The plain string fields templated on a task and, recursively, on its pre/post tasks and parallel children.
# `if` is deliberately absent: the caller evaluates it later with evaluate_condition (it needs the raw text).
_SCALAR_FIELDS = ("name", "var", "image", "queue")


def evaluate_task(
    task: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    limits: LimitsSettings | None = None,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """A deep copy of `task` with exactly the templated fields of SPEC §3.4 rendered against `context`.

    Rendered: name, var, image, queue, env values, cmd elements; pre[]/post[] and parallel.tasks[] with the
    same field set; subjob name, inputs/secrets values, webhook urls and header values. Everything else,
    including `if`, `run`, `each` and `subjob.tasks`/`subjob.output`, is copied untouched. Rendering a value
    that has no braces returns it unchanged, so re-evaluating an evaluated task changes nothing (unless a
    rendered value itself contains `{{`: re-evaluate from the definition, not from the output).

    The first failure raises ExpressionError naming the field, e.g. `env.FOO: error evaluating expression: …`.
    All the fields share one Budget (`budget`, or a new one from `limits`): limits.string.length and
    limits.template.output hold for each field, the totals of work for the whole task.
    """
    result = copy.deepcopy(dict(task))
    _render_task(result, context, "", budget if budget is not None else Budget(limits))
    return result


def each_item_context(context: Mapping[str, Any], var_name: str | None, index: int, value: Any) -> dict[str, Any]:
    """`context` plus the each item under its var name (default `item`); the index is a string, as in Tork."""
    return {**context, (var_name or "item"): {"index": str(index), "value": value}}


def job_context(
    job_id: str,
    job_name: str,
    inputs: Mapping[str, Any] | None,
    secrets: Mapping[str, Any] | None,
    tasks: Mapping[str, Any] | None,
    *,
    with_job: bool = True,
) -> dict[str, Any]:
    """The names a job's templates see. Without the job namespace (sub-jobs, scheduled instances in Tork)
    `job` is an empty map, so `{{ job.id }}` renders "" as SPEC §3.3 says, rather than being an unknown name.
    """
    return {
        "job": {"id": job_id, "name": job_name} if with_job else {},
        "inputs": dict(inputs or {}),
        "secrets": dict(secrets or {}),
        "tasks": dict(tasks or {}),
    }


def _render_value(text: Any, context: Mapping[str, Any], field: str, budget: Budget) -> Any:
    if not isinstance(text, str):
        return text  # numbers, booleans, None: nothing to template
    try:
        return render(text, context, budget=budget)
    except ExpressionError as exc:
        raise ExpressionError(f"{field}: {exc.message}") from None


def _render_map(values: Any, context: Mapping[str, Any], field: str, budget: Budget) -> None:
    if isinstance(values, dict):
        for key, value in values.items():
            values[key] = _render_value(value, context, f"{field}.{key}", budget)


def _render_task(task: dict[str, Any], context: Mapping[str, Any], prefix: str, budget: Budget) -> None:
    """Render the §3.4 fields of one task in place (`task` is already a private deep copy)."""
    for key in _SCALAR_FIELDS:
        if key in task:
            task[key] = _render_value(task[key], context, prefix + key, budget)
    _render_map(task.get("env"), context, prefix + "env", budget)
    cmd = task.get("cmd")
    if isinstance(cmd, list):
        task["cmd"] = [_render_value(arg, context, f"{prefix}cmd[{i}]", budget) for i, arg in enumerate(cmd)]
    for key in ("pre", "post"):
        for i, aux in _dicts(task.get(key)):
            _render_task(aux, context, f"{prefix}{key}[{i}].", budget)
    parallel = task.get("parallel")
    if isinstance(parallel, dict):
        for i, child in _dicts(parallel.get("tasks")):
            _render_task(child, context, f"{prefix}parallel.tasks[{i}].", budget)
    subjob = task.get("subjob")
    if isinstance(subjob, dict):
        _render_subjob(subjob, context, prefix + "subjob.", budget)


def _render_subjob(subjob: dict[str, Any], context: Mapping[str, Any], prefix: str, budget: Budget) -> None:
    # tasks and output are evaluated later, inside the sub-job's own context.
    if "name" in subjob:
        subjob["name"] = _render_value(subjob["name"], context, prefix + "name", budget)
    _render_map(subjob.get("inputs"), context, prefix + "inputs", budget)
    _render_map(subjob.get("secrets"), context, prefix + "secrets", budget)
    for i, hook in _dicts(subjob.get("webhooks")):
        if "url" in hook:
            hook["url"] = _render_value(hook["url"], context, f"{prefix}webhooks[{i}].url", budget)
        _render_map(hook.get("headers"), context, f"{prefix}webhooks[{i}].headers", budget)


def _dicts(items: Any) -> list[tuple[int, dict[str, Any]]]:
    """(index, element) of the dict elements of a list; the index is the element's place, for error paths."""
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)] if isinstance(items, list) else []
