"""Pydantic models of the job documents users submit (Tork's `input.*`), keyed in camelCase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo


@dataclass(frozen=True)
class YamlScalar:
    """A plain YAML int/float/bool: keeps its source text so string fields get it verbatim, like Go."""

    value: bool | int | float
    text: str

    def __str__(self) -> str:
        return self.text


def _scalar_text(value: Any) -> Any:
    # Go's YAML decoder puts a scalar's source text into a string field (`true` -> "true", `1.0` -> "1.0").
    return value.text if isinstance(value, YamlScalar) else value


def _map_value(value: Any, info: ValidationInfo) -> Any:
    # A YAML null map value (`KEY:`) decodes to "" in Go; in JSON a null stays an error.
    if value is None and info.context and info.context.get("yaml"):
        return ""
    return _scalar_text(value)


def _required_text(value: Any) -> Any:
    # A null required string decodes to "" as in Go, so validation reports it as "is required".
    return "" if value is None else _scalar_text(value)


def _scalar_value(value: Any) -> Any:
    return value.value if isinstance(value, YamlScalar) else value


_YAML11_BOOLS = {"y": True, "yes": True, "on": True, "n": False, "no": False, "off": False}


def _bool_value(value: Any, info: ValidationInfo) -> Any:
    # Go's yaml.v3 still reads YAML 1.1 words (yes/no/on/off/y/n) into a bool field, and only there.
    if isinstance(value, str) and info.context and info.context.get("yaml"):
        word = value if value in (value.lower(), value.upper(), value.capitalize()) else ""
        return _YAML11_BOOLS.get(word.lower(), value)
    return _scalar_value(value)


Str = Annotated[str, BeforeValidator(_scalar_text)]
MapStr = Annotated[str, BeforeValidator(_map_value)]
ReqStr = Annotated[str, BeforeValidator(_required_text)]  # required by the rules; "" when absent
Int = Annotated[int, BeforeValidator(_scalar_value)]
Float = Annotated[float, BeforeValidator(_scalar_value)]
Bool = Annotated[bool, BeforeValidator(_bool_value)]
StrMap = dict[Str, MapStr]
StrList = list[Str]


class _Input(BaseModel):
    """Strict decoding: unknown keys and type mismatches are errors, as in Tork.

    Fields the rules require are typed non-optional with an empty default (like Go's zero values), so that
    one document gets every broken rule reported at once by validation rather than a decoding error.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class RetryInput(_Input):
    limit: Int = 0  # required: validation tells an absent limit (not in model_fields_set) from 0
    initialDelay: Str | None = None  # extension: delay before the first retry (Go duration)
    scalingFactor: Float | None = None  # extension: each further delay is multiplied by this (>= 1)


class LimitsInput(_Input):
    cpus: Str | None = None
    memory: Str | None = None


class RegistryInput(_Input):
    username: Str | None = None
    password: Str | None = None


class MountInput(_Input):
    type: ReqStr = ""
    source: Str | None = None
    target: Str | None = None
    opts: StrMap | None = None


class ProbeInput(_Input):
    path: Str | None = None
    port: Int = 0  # required: validation tells an absent port from 0
    timeout: Str | None = None


class AuxTaskInput(_Input):
    """A pre/post task: runs in its own container around the main one."""

    name: ReqStr = ""
    description: Str | None = None
    cmd: StrList | None = None
    entrypoint: StrList | None = None
    run: Str | None = None
    image: Str | None = None
    registry: RegistryInput | None = None
    env: StrMap | None = None
    files: StrMap | None = None
    timeout: Str | None = None


class SidecarInput(AuxTaskInput):
    probe: ProbeInput | None = None


class WebhookInput(_Input):
    url: ReqStr = ""
    headers: StrMap | None = None
    event: Str | None = None
    if_: Str | None = Field(default=None, alias="if")


class AutoDeleteInput(_Input):
    after: ReqStr = ""


class WaitInput(_Input):
    timeout: ReqStr = ""


class PermissionInput(_Input):
    user: Str | None = None
    role: Str | None = None


class ParallelInput(_Input):
    tasks: list[TaskInput] = Field(default_factory=list)


class EachInput(_Input):
    # `list` shadows the builtin inside this class body only; no annotation below may use `list`.
    list: ReqStr = ""
    var: Str | None = None
    task: TaskInput
    concurrency: Int | None = None


class SubJobInput(_Input):
    id: Str | None = None  # accepted for Tork compatibility, replaced by the spawned job's id
    name: ReqStr = ""
    description: Str | None = None
    tasks: list[TaskInput] = Field(default_factory=list)
    inputs: StrMap | None = None
    secrets: StrMap | None = None
    autoDelete: AutoDeleteInput | None = None
    output: Str | None = None
    detached: Bool = False
    webhooks: list[WebhookInput] | None = None


class TaskInput(_Input):
    name: ReqStr = ""
    description: Str | None = None
    tags: StrList | None = None
    image: Str | None = None
    run: Str | None = None
    cmd: StrList | None = None
    entrypoint: StrList | None = None
    env: StrMap | None = None
    files: StrMap | None = None
    workdir: Str | None = None
    queue: Str | None = None
    var: Str | None = None
    if_: Str | None = Field(default=None, alias="if")
    timeout: Str | None = None
    retry: RetryInput | None = None
    limits: LimitsInput | None = None
    priority: Int | None = None
    pre: list[AuxTaskInput] | None = None
    post: list[AuxTaskInput] | None = None
    sidecars: list[SidecarInput] | None = None
    mounts: list[MountInput] | None = None
    networks: StrList | None = None
    registry: RegistryInput | None = None
    gpus: Str | None = None
    # Extension: how often this task is run again when the coordinator restarted while it ran (0..10);
    # unset → the coordinator.redeliveries setting.
    redeliveries: Int | None = None
    parallel: ParallelInput | None = None
    each: EachInput | None = None
    subjob: SubJobInput | None = None


class DefaultsInput(_Input):
    retry: RetryInput | None = None
    limits: LimitsInput | None = None
    timeout: Str | None = None
    queue: Str | None = None
    priority: Int | None = None
    redeliveries: Int | None = None  # extension: see TaskInput.redeliveries


class ScheduleInput(_Input):
    cron: ReqStr = ""


class _JobFields(_Input):
    """Fields shared by a job and a scheduled job."""

    name: ReqStr = ""
    description: Str | None = None
    tags: StrList | None = None
    tasks: list[TaskInput] = Field(default_factory=list)
    inputs: StrMap | None = None
    secrets: StrMap | None = None
    output: Str | None = None
    defaults: DefaultsInput | None = None
    webhooks: list[WebhookInput] | None = None
    permissions: list[PermissionInput] | None = None
    autoDelete: AutoDeleteInput | None = None


class JobInput(_JobFields):
    wait: WaitInput | None = None


class ScheduledJobInput(_JobFields):
    schedule: ScheduleInput


for _model in (ParallelInput, EachInput, SubJobInput):
    _model.model_rebuild()


def to_dict(model: BaseModel) -> dict[str, Any]:
    """The camelCase dict form of a model with unset (None) fields left out; `model_validate` re-reads it."""
    return model.model_dump(by_alias=True, exclude_none=True)
