"""Cron expressions: the standard 5-field syntax and descriptors are accepted, the rest rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tork_ray.spec.cron import InvalidCron, latest_due, next_fire, parse_cron, upcoming

START = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("* * * * *", datetime(2024, 1, 1, 0, 1, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2024, 1, 1, 0, 15, tzinfo=UTC)),
        ("5/15 * * * *", datetime(2024, 1, 1, 0, 5, tzinfo=UTC)),
        ("30 9 * * *", datetime(2024, 1, 1, 9, 30, tzinfo=UTC)),
        ("0 0 * * 2", datetime(2024, 1, 2, tzinfo=UTC)),
        ("0 0 * * MON-FRI", datetime(2024, 1, 2, tzinfo=UTC)),
        ("0 0 1 jan *", datetime(2025, 1, 1, tzinfo=UTC)),
        ("0 12 ? * sun", datetime(2024, 1, 7, 12, tzinfo=UTC)),
        ("0 1-3 1,15 * *", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("@yearly", datetime(2025, 1, 1, tzinfo=UTC)),
        ("@annually", datetime(2025, 1, 1, tzinfo=UTC)),
        ("@monthly", datetime(2024, 2, 1, tzinfo=UTC)),
        ("@weekly", datetime(2024, 1, 7, tzinfo=UTC)),
        ("@daily", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@midnight", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@hourly", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("@every 1h30m", datetime(2024, 1, 1, 1, 30, tzinfo=UTC)),
        ("@every 500ms", datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)),
        ("TZ=America/New_York 0 9 * * *", datetime(2024, 1, 1, 14, tzinfo=UTC)),
        ("CRON_TZ=Europe/Paris @daily", datetime(2024, 1, 1, 23, tzinfo=UTC)),
    ],
)
def test_next_fire(expr: str, expected: datetime) -> None:
    got = next_fire(expr, START)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


def test_next_fire_is_strictly_after() -> None:
    assert next_fire("0 0 * * *", START) == START + timedelta(days=1)


def test_next_fire_accepts_other_offsets_and_naive_utc() -> None:
    plus_two = START.astimezone(timezone(timedelta(hours=2)))
    assert next_fire("@hourly", plus_two) == datetime(2024, 1, 1, 1, tzinfo=UTC)
    assert next_fire("@hourly", START.replace(tzinfo=None)) == datetime(2024, 1, 1, 1, tzinfo=UTC)


def test_every_counts_from_the_whole_second() -> None:
    after = datetime(2024, 1, 1, 0, 0, 0, 700_000, tzinfo=UTC)
    assert next_fire("@every 10s", after) == datetime(2024, 1, 1, 0, 0, 10, tzinfo=UTC)


def test_parse_cron_keeps_the_time_zone() -> None:
    schedule = parse_cron("TZ=Asia/Tokyo 0 9 * * *")
    assert str(schedule.tz) == "Asia/Tokyo"
    assert schedule.fields == "0 9 * * *"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("* * * * * *", "exactly 5 fields"),
        ("0 0 0 * * * *", "exactly 5 fields"),
        ("* * * *", "exactly 5 fields"),
        ("every day", "exactly 5 fields"),
        ("@reboot", "unrecognized descriptor"),
        ("@DAILY", "unrecognized descriptor"),
        ("@every", "unrecognized descriptor"),
        ("@every x", "invalid duration"),
        ("@every -1s", "positive duration"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range"),
        ("* * 0 * *", "day of month: 0 is out of range"),
        ("* * * 13 *", "month: 13 is out of range"),
        ("* * * * 7", "day of week: 7 is out of range"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("L * * * *", "unknown value"),
        ("0 0 1W * *", "unknown value"),
        ("0 0 * * 1#2", "cannot parse"),
        ("TZ=Nowhere/Land * * * * *", "unknown time zone"),
    ],
)
def test_parse_cron_rejects(expr: str, reason: str) -> None:
    with pytest.raises(InvalidCron) as info:
        parse_cron(expr)
    assert reason in info.value.reason
    assert info.value.message.startswith("invalid cron expression")


# --- which tick is due (the scheduler's check) ---------------------------------------------------------------


def test_latest_due_is_none_before_the_first_tick_then_the_latest_one() -> None:
    schedule = parse_cron("*/5 * * * *")
    assert latest_due(schedule, START, START + timedelta(minutes=4, seconds=59)) is None
    assert latest_due(schedule, START, START + timedelta(minutes=5)) == START + timedelta(minutes=5)
    # Three ticks overdue (engine down, or a slow check): one, the latest.
    assert latest_due(schedule, START, START + timedelta(minutes=17)) == START + timedelta(minutes=15)


def test_latest_due_for_every_skips_the_periods_that_passed() -> None:
    schedule = parse_cron("@every 1s")
    assert latest_due(schedule, START, START + timedelta(milliseconds=999)) is None
    assert latest_due(schedule, START, START + timedelta(seconds=7, milliseconds=500)) == START + timedelta(seconds=7)


def test_upcoming_shows_the_next_tick_or_the_next_after_now_when_overdue() -> None:
    schedule = parse_cron("@hourly")
    assert upcoming(schedule, START, START + timedelta(minutes=10)) == START + timedelta(hours=1)
    assert upcoming(schedule, START, START + timedelta(hours=3, minutes=10)) == START + timedelta(hours=4)


def test_a_wall_clock_time_repeated_by_the_dst_change_is_not_a_new_tick() -> None:
    schedule = parse_cron("CRON_TZ=Europe/Berlin 30 2 * * *")
    first = schedule.next_after(datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert schedule.next_after(first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # not 02:30 CET that night
    every20 = parse_cron("CRON_TZ=Europe/Berlin */20 * * * *")  # the repeated hour's other times still fire
    assert every20.next_after(datetime(2026, 10, 25, 0, 40, tzinfo=UTC)) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
