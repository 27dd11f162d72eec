"""Pure helpers that turn an evaluated task definition into what a worker runs, and apply job defaults."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tork_ray.runtime.base import RunRequest, Step
from tork_ray.spec.units import parse_cpus, parse_duration, parse_memory

COMPOSITE_KEYS = ("parallel", "each", "subjob")


def apply_defaults(spec: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fills a regular task's empty fields from the job's `defaults` (SPEC §1.1 Defaults)."""
    result = copy.deepcopy(dict(spec))
    if not defaults or any(key in result for key in COMPOSITE_KEYS):
        return result
    retry = result.get("retry") or {}
    if defaults.get("retry") and not retry.get("limit"):
        result["retry"] = {**copy.deepcopy(defaults["retry"]), **{k: v for k, v in retry.items() if v}}
    if defaults.get("limits"):
        limits = dict(result.get("limits") or {})
        for key, value in defaults["limits"].items():
            if value and not limits.get(key):
                limits[key] = value
        result["limits"] = limits
    for key in ("timeout", "queue"):
        if defaults.get(key) and not result.get(key):
            result[key] = defaults[key]
    if defaults.get("priority") and not result.get("priority"):
        result["priority"] = defaults["priority"]
    return result


def _step(spec: Mapping[str, Any], fallback_name: str) -> Step:
    return Step(
        name=str(spec.get("name") or fallback_name),
        image=str(spec.get("image") or ""),
        run=str(spec.get("run") or ""),
        cmd=tuple(spec.get("cmd") or ()),
        entrypoint=tuple(spec.get("entrypoint") or ()),
        env=dict(spec.get("env") or {}),
        files=dict(spec.get("files") or {}),
    )


def build_request(task_id: str, job_id: str, spec: Mapping[str, Any], scope: str) -> RunRequest:
    """The RunRequest for an evaluated, defaulted regular task. Units were validated at submit time."""
    limits = spec.get("limits") or {}
    timeout = spec.get("timeout")
    return RunRequest(
        task_id=task_id,
        job_id=job_id,
        scope=scope,
        main=_step(spec, "main"),
        workdir=str(spec.get("workdir") or ""),
        pre=tuple(_step(step, f"pre-{i}") for i, step in enumerate(spec.get("pre") or ())),
        post=tuple(_step(step, f"post-{i}") for i, step in enumerate(spec.get("post") or ())),
        timeout_seconds=parse_duration(timeout) if timeout else None,
        cpus_nano=parse_cpus(limits["cpus"]) if limits.get("cpus") else None,
        memory_bytes=parse_memory(limits["memory"]) if limits.get("memory") else None,
        mounts=tuple(spec.get("mounts") or ()),
        networks=tuple(spec.get("networks") or ()),
        registry=spec.get("registry"),
        gpus=str(spec.get("gpus") or ""),
        sidecars=tuple(spec.get("sidecars") or ()),
    )


def retry_delay(retry: Mapping[str, Any] | None, attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1-based): immediate unless a backoff is configured."""
    if not retry or not retry.get("initialDelay"):
        return 0.0
    factor = float(retry.get("scalingFactor") or 1.0)
    return parse_duration(retry["initialDelay"]) * factor ** (attempt - 1)
