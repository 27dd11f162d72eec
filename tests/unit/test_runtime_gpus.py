"""Tork's `gpus` field (Docker's --gpus syntax) into an Engine API DeviceRequest."""

from __future__ import annotations

import pytest

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.gpus import GpuRequest, parse_gpus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", GpuRequest(count=-1)),
        ("2", GpuRequest(count=2)),
        ("count=2", GpuRequest(count=2)),
        ("count=all", GpuRequest(count=-1)),
        ("device=0", GpuRequest(device_ids=("0",))),
        ("device=0,1", GpuRequest(device_ids=("0", "1"))),
        ('"device=0,2"', GpuRequest(device_ids=("0", "2"))),
        ("device=GPU-3a23c669-1f69", GpuRequest(device_ids=("GPU-3a23c669-1f69",))),
        ("driver=nvidia", GpuRequest(driver="nvidia", count=1)),
        ('all,"capabilities=compute,utility"', GpuRequest(count=-1, capabilities=(("compute", "utility", "gpu"),))),
        ("count=1,capabilities=gpu", GpuRequest(count=1, capabilities=(("gpu",),))),
        ('driver=nvidia,count=1,"options=a=1,b=2"', GpuRequest(driver="nvidia", count=1, options={"a": "1", "b": "2"})),
    ],
)
def test_parses_the_cli_syntax(text: str, expected: GpuRequest) -> None:
    assert parse_gpus(text) == expected


def test_api_shape() -> None:
    assert parse_gpus("device=0,1").to_api() == {
        "Driver": "",
        "Count": 0,
        "DeviceIDs": ["0", "1"],
        "Capabilities": [["gpu"]],
        "Options": {},
    }
    assert parse_gpus("all").to_api()["Count"] == -1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("count=two", "count must be an integer or 'all'"),
        ("many", "count must be an integer or 'all'"),
        ("count=1,count=2", "'count' can be given only once"),
        ("count=1,device=0", "either a count or devices"),
        ("colour=red", "unexpected key 'colour'"),
    ],
)
def test_rejects_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        parse_gpus(text)
    assert message in caught.value.message
    assert caught.value.message.startswith("gpus:")
