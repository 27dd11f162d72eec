"""`python -m benchmarks`'s arguments: scenarios run one at a time unless told (none disturbs another's figures)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import parse_args


def test_scenarios_run_one_at_a_time_unless_told() -> None:
    assert parse_args([]).parallel == 1
    assert parse_args(["--quick"]).parallel == 1
    assert parse_args(["--quick", "--parallel", "2"]).parallel == 2


def test_parallel_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--parallel", "0"])
    assert exited.value.code == 2
    assert "--parallel must be at least 1" in capsys.readouterr().err
