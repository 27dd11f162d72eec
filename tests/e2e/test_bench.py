"""`tork-ray bench --quick` (`python -m benchmarks --quick`) keeps working: every registered scenario runs and
gives its rows (figures are printed, never judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.scenarios  # noqa: F401  (fills the registry)
from benchmarks.registry import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_quick_bench_runs_every_scenario(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-m", "tork_ray.cli", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "bench.json").read_text())
    assert summary["failures"] == {}
    assert set(summary["reports"]) == set(SCENARIOS)
    assert set(summary["rows_by_scenario"]) == set(SCENARIOS)
    assert all(count > 0 for count in summary["rows_by_scenario"].values()), summary["rows_by_scenario"]
    for row in summary["rows"]:
        # A time "added" over a baseline is a difference of two measurements: a small run's noise can make it
        # negative (the engine's sequential shell tasks now come within a millisecond of raw subprocesses).
        assert (row["value"] >= 0 or "added" in row["metric"]) and row["baseline_value"] > 0, row
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    assert "ratio" in done.stdout  # the table's header


def test_bench_names_the_scenarios_when_one_is_unknown() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tork_ray.cli", "bench", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "invalid choice: 'nope'" in done.stderr and "concurrent_jobs" in done.stderr
