"""The libyaml fast path and the pure-Python loader read every example and fixture alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tork_ray.spec import parse as parse_module

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
SCALARS = """
name: scalars
inputs: {a: 1.50, b: 0x1F, c: yes, d: true, e: null, f: ~, g: 1e3, h: .inf, i: "quoted", j: 007}
tasks: [{name: t, priority: 3, each: {list: "[1]", concurrency: 0o17, task: {name: c}}}]
"""


@pytest.mark.parametrize("text", [SCALARS, *(path.read_text() for path in EXAMPLES)])
def test_fast_and_pure_loaders_agree(text: str) -> None:
    assert parse_module._CLoader is not None, "PyYAML's wheels carry libyaml: submit latency depends on it"
    fast = parse_module._get_data(lambda: parse_module._FastStrictLoader(text))
    pure = parse_module._get_data(lambda: parse_module._StrictLoader(text))
    assert repr(fast) == repr(pure)
