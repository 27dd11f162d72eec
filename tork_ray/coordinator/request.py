"""Pure helpers that turn an evaluated task definition into what a worker runs, and apply job defaults."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tork_ray.runtime.base import DEFAULT_PROBE_TIMEOUT, Mount, Probe, Registry, RunRequest, Sidecar, Step
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
    if defaults.get("redeliveries") is not None and result.get("redeliveries") is None:
        result["redeliveries"] = defaults["redeliveries"]
    return result


def _registry(spec: Mapping[str, Any]) -> Registry | None:
    registry = spec.get("registry") or {}
    if not registry.get("username"):
        return None
    return Registry(str(registry["username"]), str(registry.get("password") or ""))


def _step(spec: Mapping[str, Any], fallback_name: str) -> Step:
    return Step(
        name=str(spec.get("name") or fallback_name),
        image=str(spec.get("image") or ""),
        run=str(spec.get("run") or ""),
        cmd=tuple(str(arg) for arg in spec.get("cmd") or ()),
        entrypoint=tuple(str(arg) for arg in spec.get("entrypoint") or ()),
        env={str(k): str(v) for k, v in (spec.get("env") or {}).items()},
        files={str(k): str(v) for k, v in (spec.get("files") or {}).items()},
        registry=_registry(spec),
    )


def _sidecar(spec: Mapping[str, Any], index: int) -> Sidecar:
    probe = spec.get("probe")
    return Sidecar(
        step=_step(spec, f"sidecar-{index}"),
        probe=Probe(
            port=int(probe["port"]),
            path=str(probe.get("path") or "/"),
            timeout_seconds=parse_duration(probe["timeout"]) if probe.get("timeout") else DEFAULT_PROBE_TIMEOUT,
        )
        if probe
        else None,
    )


def _mount(spec: Mapping[str, Any]) -> Mount:
    return Mount(
        type=str(spec.get("type") or ""),
        target=str(spec.get("target") or ""),
        source=str(spec.get("source") or ""),
        opts={str(k): str(v) for k, v in (spec.get("opts") or {}).items()},
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
        mounts=tuple(_mount(mount) for mount in spec.get("mounts") or ()),
        networks=tuple(str(name) for name in spec.get("networks") or ()),
        gpus=str(spec.get("gpus") or ""),
        sidecars=tuple(_sidecar(sidecar, i) for i, sidecar in enumerate(spec.get("sidecars") or ())),
    )


MAX_RETRY_DELAY = 24 * 3600.0  # s: a backoff grows to at most a day (a huge scalingFactor must not overflow)


def retry_delay(retry: Mapping[str, Any] | None, attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1-based): immediate unless a backoff is configured."""
    if not retry or not retry.get("initialDelay"):
        return 0.0
    factor = float(retry.get("scalingFactor") or 1.0)
    try:
        delay = parse_duration(retry["initialDelay"]) * factor ** (attempt - 1)
    except OverflowError:
        return MAX_RETRY_DELAY
    return delay if 0.0 <= delay <= MAX_RETRY_DELAY else MAX_RETRY_DELAY  # also NaN and inf
