"""Durations, memory sizes and CPU counts parse like Go/Docker do."""

from __future__ import annotations

import pytest

from tork_ray.errors import BadRequest
from tork_ray.spec.units import format_duration, parse_cpus, parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("+0", 0.0),
        ("-0", 0.0),
        ("0s", 0.0),
        ("1s", 1.0),
        ("2.5s", 2.5),
        ("1.s", 1.0),
        (".5s", 0.5),
        ("300ms", 0.3),
        ("1us", 1e-6),
        ("1\u00b5s", 1e-6),
        ("1\u03bcs", 1e-6),
        ("10ns", 1e-8),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("1h0.5m", 3630.0),
        ("-1s", -1.0),
        ("1h1m1s1ms", 3661.001),
        ("10h30m45s", 37845.0),
    ],
)
def test_parse_duration_accepts_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'invalid duration ""'),
        ("1", 'missing unit in duration "1"'),
        ("00", 'missing unit in duration "00"'),
        ("abc", 'invalid duration "abc"'),
        ("1x", 'unknown unit "x" in duration "1x"'),
        ("1d", 'unknown unit "d" in duration "1d"'),
        (".s", 'invalid duration ".s"'),
        ("-", 'invalid duration "-"'),
        ("1s.5", 'missing unit in duration "1s.5"'),
        (" 1s", 'invalid duration " 1s"'),
        ("1S", 'unknown unit "S" in duration "1S"'),
        ("9999999999h", 'invalid duration "9999999999h"'),
    ],
)
def test_parse_duration_rejects_garbage(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_duration(text)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (1.5, "1.5s"),
        (7322.5, "2h2m2.5s"),
        (0.3, "300ms"),
        (0.0015, "1.5ms"),
        (1.5e-6, "1.5\u00b5s"),
        (1e-9, "1ns"),
        (-90, "-1m30s"),
    ],
)
def test_format_duration_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["1h30m", "2.5s", "300ms", "45m", "1h0m0s"])
def test_format_duration_round_trips(text: str) -> None:
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("0", 0),
        ("10b", 10),
        ("1k", 1024),
        ("1kb", 1024),
        ("1KiB", 1024),
        ("500m", 500 * 1024**2),
        ("10mb", 10 * 1024**2),
        ("10MB", 10 * 1024**2),
        ("10 m", 10 * 1024**2),
        ("1g", 1024**3),
        ("1.5g", 1536 * 1024**2),
        ("2t", 2 * 1024**4),
        ("1p", 1024**5),
    ],
)
def test_parse_memory_accepts_docker_sizes(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "abc", "-1m", "1x", "1.2.3m", "m", "1mm", "1e3", " 1m", "99999999p"])
def test_parse_memory_rejects_garbage(text: str) -> None:
    with pytest.raises(BadRequest, match="invalid size"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("1", 1_000_000_000),
        ("2", 2_000_000_000),
        ("0.5", 500_000_000),
        (".5", 500_000_000),
        ("1.", 1_000_000_000),
        ("0.000000001", 1),
        ("1.250000000", 1_250_000_000),
    ],
)
def test_parse_cpus_gives_nano_cpus(text: str, nano: int) -> None:
    assert parse_cpus(text) == nano


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "rational number"),
        ("abc", "rational number"),
        ("-1", "rational number"),
        ("1/2", "rational number"),
        ("1e3", "rational number"),
        ("0", "greater than 0"),
        ("0.0", "greater than 0"),
        ("0.0000000001", "too precise"),
        ("99999999999", "too large"),
    ],
)
def test_parse_cpus_rejects_bad_values(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_cpus(text)
