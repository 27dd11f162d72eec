"""`python -m benchmarks`'s arguments: a full run's scenarios one at a time unless told (none disturbs another's
figures); `--quick`, a smoke run whose figures mean little, two at a time."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import parse_args


def test_scenarios_run_one_at_a_time_unless_told_or_quick() -> None:
    assert parse_args([]).parallel == 1
    assert parse_args(["--parallel", "2"]).parallel == 2
    assert parse_args(["--quick"]).parallel == 2
    assert parse_args(["--quick", "--parallel", "1"]).parallel == 1


def test_quick_starts_the_longest_scenarios_first() -> None:
    from benchmarks.__main__ import start_order
    from benchmarks.registry import SCENARIOS

    chosen = list(SCENARIOS.values())
    order = [scenario.quick_seconds for scenario in start_order(chosen, parallel=2)]
    assert order == sorted(order, reverse=True)
    assert start_order(chosen, parallel=1) == chosen  # one at a time: the registry's order


def test_parallel_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--parallel", "0"])
    assert exited.value.code == 2
    assert "--parallel must be at least 1" in capsys.readouterr().err
