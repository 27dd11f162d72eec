"""Docker's `--gpus` syntax (as a task's `gpus` field) parsed into an Engine API DeviceRequest — pure."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any

from tork_ray.errors import RuntimeFailure


@dataclass(frozen=True)
class GpuRequest:
    driver: str = ""
    count: int = 0  # -1: all
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[tuple[str, ...], ...] = (("gpu",),)
    options: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The DeviceRequest object of the Engine API's HostConfig.DeviceRequests."""
        return {
            "Driver": self.driver,
            "Count": self.count,
            "DeviceIDs": list(self.device_ids),
            "Capabilities": [list(caps) for caps in self.capabilities],
            "Options": dict(self.options),
        }


def parse_gpus(text: str) -> GpuRequest:
    """`all`, `2`, `count=2`, `device=0,1`, `"device=0,1",capabilities=compute`, `driver=nvidia,count=all`, ...

    As the Docker CLI, except one kindness: in `device=0,1` unquoted, the bare `1` continues the device list
    (the CLI would read it as a count) — that is what a job file author means.
    """
    try:
        fields = next(csv.reader([text.strip()]))
    except (csv.Error, StopIteration):
        raise RuntimeFailure(f"gpus: cannot parse '{text}'") from None
    values: dict[str, Any] = {}
    last_key = ""
    for raw in (f.strip() for f in fields):
        key, has_value, value = raw.partition("=")
        if not has_value and last_key == "device" and key and key != "all":
            values["device"] = [*values["device"], key]
            continue
        if not has_value:
            key, value = "count", key
        if key in values:
            raise RuntimeFailure(f"gpus: '{key}' can be given only once in '{text}'")
        values[key] = _field(key, value, text)
        last_key = key
    return _request(values, text)


def _field(key: str, value: str, text: str) -> Any:
    if key == "count":
        return _count(value, text)
    if key == "device":
        return [part for part in value.split(",") if part]
    if key == "capabilities":
        return [part for part in value.split(",") if part]
    if key == "options":
        pairs = next(csv.reader([value]))
        return dict(pair.partition("=")[::2] for pair in pairs if pair)
    if key == "driver":
        return value
    raise RuntimeFailure(f"gpus: unexpected key '{key}' in '{text}'")


def _count(value: str, text: str) -> int:
    if value == "all":
        return -1
    try:
        return int(value)
    except ValueError:
        raise RuntimeFailure(f"gpus: count must be an integer or 'all', got '{value}' in '{text}'") from None


def _request(values: dict[str, Any], text: str) -> GpuRequest:
    devices = tuple(values.get("device") or ())
    if devices and "count" in values:
        raise RuntimeFailure(f"gpus: give either a count or devices, not both, in '{text}'")
    count = values.get("count", 0 if devices else 1)
    capabilities = values.get("capabilities")
    return GpuRequest(
        driver=values.get("driver", ""),
        count=count,
        device_ids=devices,
        # The CLI always adds "gpu": without it the daemon picks no device driver.
        capabilities=(tuple(dict.fromkeys([*capabilities, "gpu"])),) if capabilities else (("gpu",),),
        options=values.get("options", {}),
    )
