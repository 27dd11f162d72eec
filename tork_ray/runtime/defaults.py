"""A node's own say in a task it runs: worker.limits.* fill empty limits, hostenv vars join the task env."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tork_ray.runtime.base import RunRequest, Step
from tork_ray.settings import RuntimeSettings


def host_env(pairs: tuple[tuple[str, str], ...], environ: Mapping[str, str]) -> dict[str, str]:
    """{task name: value} of the host variables `pairs` names; one the host lacks is skipped, not set empty."""
    return {alias: environ[name] for name, alias in pairs if name in environ}


def with_host_env(step: Step, env: Mapping[str, str]) -> Step:
    # The host's value wins over the task's, as in Tork's hostenv middleware: the operator put it on the node
    # (a proxy, a token) and a job document must not be able to pose as it.
    return dataclasses.replace(step, env={**step.env, **env}) if env else step


def with_node_defaults(request: RunRequest, settings: RuntimeSettings, environ: Mapping[str, str]) -> RunRequest:
    """`request` as this node runs it: its empty cpus/memory/timeout taken from worker.limits.*, and the
    hostenv variables set in main, pre and post (not sidecars: Tork sets them on the task and its pre/post)."""
    env = host_env(settings.hostenv(), environ)
    changes: dict[str, Any] = {}
    if not request.cpus_nano and (cpus := settings.default_cpus_nano()):
        changes["cpus_nano"] = cpus
    if not request.memory_bytes and (memory := settings.default_memory_bytes()):
        changes["memory_bytes"] = memory
    if not request.timeout_seconds and (timeout := settings.default_timeout_seconds()):
        changes["timeout_seconds"] = timeout
    if env:
        changes["main"] = with_host_env(request.main, env)
        changes["pre"] = tuple(with_host_env(step, env) for step in request.pre)
        changes["post"] = tuple(with_host_env(step, env) for step in request.post)
    return dataclasses.replace(request, **changes) if changes else request
