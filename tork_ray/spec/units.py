"""Go-compatible parsing of durations, Docker memory sizes and CPU counts used in job documents."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from tork_ray.errors import BadRequest

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, as Go accepts
    "\u03bcs": 1_000,  # Greek mu, as Go accepts
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_NS = (1 << 63) - 1  # Go's Duration is an int64 of nanoseconds
# One "<number><unit>" component: digits, optional fraction, then the unit (anything but digits and dots).
_COMPONENT = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration string ("1h30m", "2.5s", "-1us") into integer nanoseconds."""
    rest, sign = text, 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise BadRequest(f'invalid duration "{text}"')
    total = 0
    while rest:
        match = _COMPONENT.match(rest)
        assert match is not None  # every part of the pattern is optional, so it always matches
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            raise BadRequest(f'invalid duration "{text}"')
        if not unit:
            raise BadRequest(f'missing unit in duration "{text}"')
        if unit not in _NS_PER_UNIT:
            raise BadRequest(f'unknown unit "{unit}" in duration "{text}"')
        size = _NS_PER_UNIT[unit]
        total += int(whole or "0") * size
        if frac:
            # Go truncates sub-nanosecond precision rather than rounding.
            total += int(frac) * size // 10 ** len(frac)
        if total > _MAX_NS:
            raise BadRequest(f'invalid duration "{text}"')
        rest = rest[match.end() :]
    return sign * total


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds; raises BadRequest naming the problem."""
    return parse_duration_ns(text) / 1_000_000_000


def _with_fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def format_duration(seconds: float) -> str:
    """Format seconds the way Go's Duration.String does: 90 -> "1m30s", 0.0015 -> "1.5ms"."""
    ns = round(seconds * 1_000_000_000)
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_with_fraction(ns, 1_000)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_with_fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, _NS_PER_UNIT["h"])
    minutes, rest = divmod(rest, _NS_PER_UNIT["m"])
    secs = _with_fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}"
    if minutes:
        return f"{sign}{minutes}m{secs}"
    return f"{sign}{secs}"


# Docker's RAMInBytes syntax: a number, an optional space, an optional binary unit, optional "i" and "b".
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_memory(text: str) -> int:
    """Parse a Docker memory size ("500m", "1g", "10mb", "1024") into bytes."""
    match = _MEMORY.match(text)
    if not match:
        raise BadRequest(f"invalid size: '{text}'")
    size = int(Decimal(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "").lower()])
    if size > _MAX_NS:  # same int64 ceiling as Docker
        raise BadRequest(f"invalid size: '{text}' is too large")
    return size


_CPUS = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$")


def parse_cpus(text: str) -> int:
    """Parse a CPU count ("0.5", "2") into Docker nano-CPUs; at most 9 decimals and greater than 0."""
    if not _CPUS.match(text):
        raise BadRequest(f"failed to parse {text} as a rational number")
    try:
        nano = Decimal(text) * 1_000_000_000
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid decimals
        raise BadRequest(f"failed to parse {text} as a rational number") from exc
    if nano != nano.to_integral_value():
        raise BadRequest(f"value {text} is too precise (at most 9 decimal places)")
    if nano <= 0:
        raise BadRequest(f"value {text} must be greater than 0")
    if nano > _MAX_NS:
        raise BadRequest(f"value {text} is too large")
    return int(nano)
