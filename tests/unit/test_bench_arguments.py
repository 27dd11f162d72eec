"""`python -m benchmarks`'s arguments: scenarios run one at a time unless quick (where figures mean little)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import QUICK_PARALLEL, parse_args


def test_a_full_run_measures_one_scenario_at_a_time() -> None:
    assert parse_args([]).parallel == 1
    assert parse_args(["--parallel", "2"]).parallel == 2


def test_a_quick_run_runs_several_at_once_unless_told() -> None:
    assert parse_args(["--quick"]).parallel == QUICK_PARALLEL > 1
    assert parse_args(["--quick", "--parallel", "1"]).parallel == 1


def test_parallel_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--parallel", "0"])
    assert exited.value.code == 2
    assert "--parallel must be at least 1" in capsys.readouterr().err
