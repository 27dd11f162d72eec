"""What users submit: job document models, strict JSON/YAML parsing, validation, units and cron."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562): `tork_ray.spec.units` alone (what a Ray worker needs) must not pull in the YAML
# parser, the validator and croniter with it.
_NAMES = {
    "CronSchedule": "tork_ray.spec.cron",
    "InvalidCron": "tork_ray.spec.cron",
    "next_fire": "tork_ray.spec.cron",
    "parse_cron": "tork_ray.spec.cron",
    "AutoDeleteInput": "tork_ray.spec.models",
    "AuxTaskInput": "tork_ray.spec.models",
    "DefaultsInput": "tork_ray.spec.models",
    "EachInput": "tork_ray.spec.models",
    "JobInput": "tork_ray.spec.models",
    "LimitsInput": "tork_ray.spec.models",
    "MountInput": "tork_ray.spec.models",
    "ParallelInput": "tork_ray.spec.models",
    "PermissionInput": "tork_ray.spec.models",
    "ProbeInput": "tork_ray.spec.models",
    "RegistryInput": "tork_ray.spec.models",
    "RetryInput": "tork_ray.spec.models",
    "ScheduledJobInput": "tork_ray.spec.models",
    "ScheduleInput": "tork_ray.spec.models",
    "SidecarInput": "tork_ray.spec.models",
    "SubJobInput": "tork_ray.spec.models",
    "TaskInput": "tork_ray.spec.models",
    "WaitInput": "tork_ray.spec.models",
    "WebhookInput": "tork_ray.spec.models",
    "to_dict": "tork_ray.spec.models",
    "JOB_CONTENT_TYPES": "tork_ray.spec.parse",
    "parse_job": "tork_ray.spec.parse",
    "parse_scheduled_job": "tork_ray.spec.parse",
    "format_duration": "tork_ray.spec.units",
    "parse_cpus": "tork_ray.spec.units",
    "parse_duration": "tork_ray.spec.units",
    "parse_memory": "tork_ray.spec.units",
    "validate_job": "tork_ray.spec.validate",
    "validate_scheduled_job": "tork_ray.spec.validate",
}

if TYPE_CHECKING:
    from tork_ray.spec.cron import CronSchedule, InvalidCron, next_fire, parse_cron
    from tork_ray.spec.models import (
        AutoDeleteInput,
        AuxTaskInput,
        DefaultsInput,
        EachInput,
        JobInput,
        LimitsInput,
        MountInput,
        ParallelInput,
        PermissionInput,
        ProbeInput,
        RegistryInput,
        RetryInput,
        ScheduledJobInput,
        ScheduleInput,
        SidecarInput,
        SubJobInput,
        TaskInput,
        WaitInput,
        WebhookInput,
        to_dict,
    )
    from tork_ray.spec.parse import JOB_CONTENT_TYPES, parse_job, parse_scheduled_job
    from tork_ray.spec.units import format_duration, parse_cpus, parse_duration, parse_memory
    from tork_ray.spec.validate import validate_job, validate_scheduled_job


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'tork_ray.spec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "JOB_CONTENT_TYPES",
    "AutoDeleteInput",
    "AuxTaskInput",
    "CronSchedule",
    "DefaultsInput",
    "EachInput",
    "InvalidCron",
    "JobInput",
    "LimitsInput",
    "MountInput",
    "ParallelInput",
    "PermissionInput",
    "ProbeInput",
    "RegistryInput",
    "RetryInput",
    "ScheduleInput",
    "ScheduledJobInput",
    "SidecarInput",
    "SubJobInput",
    "TaskInput",
    "WaitInput",
    "WebhookInput",
    "format_duration",
    "next_fire",
    "parse_cpus",
    "parse_cron",
    "parse_duration",
    "parse_job",
    "parse_memory",
    "parse_scheduled_job",
    "to_dict",
    "validate_job",
    "validate_scheduled_job",
]
