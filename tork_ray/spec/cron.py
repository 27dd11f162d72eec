"""Standard 5-field cron expressions, descriptors and "@every", parsed strictly, with next fire times."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from tork_ray.errors import BadRequest
from tork_ray.spec.units import parse_duration

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (field name, min, max, names) in the order of the standard parser: minute hour dom month dow.
_FIELDS: list[tuple[str, int, int, list[str]]] = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
]
_PART = re.compile(r"^(?:(?P<any>[*?])|(?P<lo>\w+)(?:-(?P<hi>\w+))?)(?:/(?P<step>\d+))?$")


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: either a 5-field expression (`fields`) or a constant delay (`every`, seconds)."""

    expr: str
    tz: tzinfo
    fields: str | None = None
    every: float | None = None

    def next_after(self, after: datetime) -> datetime:
        """First fire time strictly after `after` (naive datetimes are taken as UTC), as aware UTC."""
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        if self.every is not None:
            # Like Go's ConstantDelaySchedule: whole-second delay counted from the whole second.
            return after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=self.every)
        assert self.fields is not None
        local = after.astimezone(self.tz)
        nxt: datetime = croniter(self.fields, local).get_next(datetime)
        if nxt.replace(tzinfo=None) == local.replace(tzinfo=None):
            # The hour repeated when clocks go back: 02:30 comes twice, and croniter (like Tork's robfig/cron)
            # would fire it twice. A wall-clock time that just fired does not fire again (as Debian's cron).
            nxt = croniter(self.fields, nxt).get_next(datetime)
        return nxt.astimezone(UTC)


class InvalidCron(BadRequest):
    """A cron expression that does not parse; `reason` is the message without the expression."""

    def __init__(self, expr: str, reason: str) -> None:
        super().__init__(f"invalid cron expression {expr!r}: {reason}")
        self.reason = reason


def _bad(expr: str, why: str) -> InvalidCron:
    return InvalidCron(expr, why)


def _value(token: str, lo: int, hi: int, names: list[str], what: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token.lower() in names:
        value = names.index(token.lower()) + lo  # jan is 1, sun is 0
    else:
        raise ValueError(f"{what}: unknown value {token!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{what}: {value} is out of range {lo}-{hi}")
    return value


def _check_field(field: str, what: str, lo: int, hi: int, names: list[str]) -> str:
    """Validate one field; returns it in croniter's dialect ("?" becomes "*")."""
    for part in field.split(","):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"{what}: cannot parse {part!r}")
        if match["step"] is not None and int(match["step"]) < 1:
            raise ValueError(f"{what}: step must be at least 1")
        if match["any"]:
            continue
        start = _value(match["lo"], lo, hi, names, what)
        end = _value(match["hi"], lo, hi, names, what) if match["hi"] else start
        if start > end:
            raise ValueError(f"{what}: range {part!r} runs backwards")
    return field.replace("?", "*")


def _split_tz(expr: str) -> tuple[tzinfo, str]:
    text = expr.strip()
    if not text.startswith(("TZ=", "CRON_TZ=")):
        return UTC, text
    name, _, rest = text.partition(" ")
    zone = name.split("=", 1)[1]
    try:
        return ZoneInfo(zone), rest.strip()
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _bad(expr, f"unknown time zone {zone!r}") from exc


def _parse_every(expr: str, spec: str, tz: tzinfo) -> CronSchedule:
    try:
        seconds = parse_duration(spec[len("@every ") :].strip())
    except BadRequest as exc:
        raise _bad(expr, exc.message) from exc
    if seconds <= 0:
        raise _bad(expr, "@every needs a positive duration")
    # Go rounds the delay down to whole seconds, with a floor of one second.
    return CronSchedule(expr=expr, tz=tz, every=float(max(1, math.floor(seconds))))


def parse_cron(expr: str) -> CronSchedule:
    """Parse a standard 5-field cron expression, a descriptor or "@every <duration>"; BadRequest if not."""
    tz, spec = _split_tz(expr)
    if not spec:
        raise _bad(expr, "empty expression")
    if spec.startswith("@every "):
        return _parse_every(expr, spec, tz)
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise _bad(expr, f"unrecognized descriptor {spec!r}")
        return CronSchedule(expr=expr, tz=tz, fields=_DESCRIPTORS[spec])
    parts = spec.split()
    if len(parts) != 5:
        raise _bad(expr, f"expected exactly 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    try:
        fields = " ".join(_check_field(p, *spec_) for p, spec_ in zip(parts, _FIELDS, strict=True))
    except ValueError as exc:
        raise _bad(expr, str(exc)) from exc
    if not croniter.is_valid(fields):
        raise _bad(expr, "not a valid cron expression")
    return CronSchedule(expr=expr, tz=tz, fields=fields)


def next_fire(expr: str, after: datetime) -> datetime:
    """Next fire time of `expr` strictly after `after`, as an aware UTC datetime."""
    return parse_cron(expr).next_after(after)


def latest_due(schedule: CronSchedule, mark: datetime, now: datetime) -> datetime | None:
    """The latest tick after `mark` that is due at `now` (at or before it), or None if none is due yet.

    The ticks between the first due one and that latest one are skipped on purpose: whether the engine was
    down over three ticks or one job took longer to create than a `@every 1s` period, a schedule owes one job
    per check at most, never a backlog of them (SPEC §6.1 catch-up; see README "Scheduled jobs")."""
    first = schedule.next_after(mark)
    if first > now:
        return None
    if schedule.every is not None:
        steps = int((now - first).total_seconds() // schedule.every)
        return first + timedelta(seconds=steps * schedule.every)
    assert schedule.fields is not None
    # croniter's get_prev from `now` itself includes `now` when it is a tick (it works in whole seconds).
    latest: datetime = croniter(schedule.fields, now.astimezone(schedule.tz)).get_prev(datetime).astimezone(UTC)
    return latest if first <= latest <= now else first


def upcoming(schedule: CronSchedule, mark: datetime, now: datetime) -> datetime:
    """When the next job is due, as shown to users: the next tick after `mark`, or after `now` when that one
    is overdue (a catch-up then fires at once, on the coordinator's next check)."""
    nxt = schedule.next_after(mark)
    return nxt if nxt >= now else schedule.next_after(now)
