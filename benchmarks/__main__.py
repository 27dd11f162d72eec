"""`python -m benchmarks` (`make bench`): every scenario against its baseline in the same run; a table, JSON, a chart.

Each scenario runs in its own process (benchmarks/scenarios.py lists them) and interleaves its rounds with its
baseline's. `--quick` runs each small and two at a time (a smoke run: the figures mean little; CI runs it to
keep every scenario working, in under two minutes on two cores). Writes results/bench.json and
results/bench.png. Nothing here judges: a missed goal is printed, never an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import benchmarks.scenarios  # noqa: F401  (fills the registry)
from benchmarks.registry import SCENARIOS, Row, Scenario

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario small: a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="these scenarios only")
    parser.add_argument("--skip", nargs="+", choices=sorted(SCENARIOS), default=[], help="all but these")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where bench.json and bench.png go")
    parser.add_argument(
        "--parallel",
        type=int,
        help="scenarios run at once (default 1, so that none disturbs another's figures; 2 with --quick, whose "
        "figures mean little: on two busy cores 166 s against 259 s one at a time; 3 at once was slower than 2, "
        "and one scenario's Ray timed out starting)",
    )
    args = parser.parse_args(argv)
    if args.parallel is None:
        args.parallel = 2 if args.quick else 1
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    return args


def run_scenario(scenario: Scenario, quick: bool) -> tuple[list[Row], dict[str, Any] | None, str]:
    """Runs one scenario's module; its rows, its own report, and "" or why it failed."""
    result = RESULTS / scenario.result
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", scenario.module, *(scenario.quick if quick else scenario.full)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("RAY_AUTH_MODE", "disabled")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not result.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        return [], None, f"exit {done.returncode}: {tail}"
    report: dict[str, Any] = json.loads(result.read_text())
    return scenario.rows(report), report, ""


def timed_scenario(scenario: Scenario, quick: bool) -> tuple[list[Row], dict[str, Any] | None, str, float]:
    started = time.monotonic()
    rows, report, failure = run_scenario(scenario, quick)
    return rows, report, failure, time.monotonic() - started


def start_order(chosen: list[Scenario], parallel: int) -> list[Scenario]:
    """Run at once, the longest start first (the pool starts them in this order) so that the lanes end together;
    one at a time, the registry's order. Reported in the registry's order either way."""
    return sorted(chosen, key=lambda scenario: -scenario.quick_seconds) if parallel > 1 else chosen


def table(rows: list[Row]) -> str:
    header = ("scenario", "metric", "tork_ray", "baseline", "ratio", "goal", "met")
    lines = [
        (
            row.scenario,
            row.metric,
            f"{row.value:.4g} {row.unit}",
            f"{row.baseline}: {row.baseline_value:.4g}",
            f"{row.ratio:.3f}",
            ", ".join(str(goal) for goal in row.goals),
            {True: "yes", False: "NO", None: ""}[row.met],
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    render = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), *render])


def chart(rows: list[Row], path: Path, title: str) -> None:
    """Two panels of ratios against each baseline: overhead (lower is better) and throughput (higher is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("overhead", "tork_ray / baseline (lower is better)"), ("throughput", "tork_ray / baseline (higher)")]
    figure, axes = plt.subplots(1, 2, figsize=(15, 0.5 * max(4, len(rows)) + 1.5))
    for axis, (kind, label) in zip(axes, panels, strict=True):
        mine = [row for row in rows if row.kind == kind]
        names = [f"{row.scenario}: {row.metric}\n(vs {row.baseline})" for row in mine]
        colors = [{True: "tab:green", False: "tab:red", None: "tab:gray"}[row.met] for row in mine]
        axis.barh(names, [row.ratio for row in mine], color=colors)
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_xlabel(label)
        axis.tick_params(axis="y", labelsize=7)
        axis.invert_yaxis()
        for index, row in enumerate(mine):
            axis.text(row.ratio, index, f" {row.value:.4g} {row.unit}", va="center", fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [SCENARIOS[name] for name in (args.only or SCENARIOS) if name not in args.skip]
    rows: list[Row] = []
    reports: dict[str, Any] = {}
    rows_by_scenario: dict[str, int] = {}
    failures: dict[str, str] = {}
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        started = {
            scenario.name: pool.submit(timed_scenario, scenario, args.quick)
            for scenario in start_order(chosen, args.parallel)
        }
        runs = [started[scenario.name] for scenario in chosen]
        for scenario, run in zip(chosen, runs, strict=True):  # in the registry's order, whatever ends first
            found, report, failure, seconds = run.result()
            print(f"-- {scenario.name}: {scenario.about}", flush=True)
            rows += found
            reports[scenario.name] = report
            rows_by_scenario[scenario.name] = len(found)
            if failure:
                failures[scenario.name] = failure
                print(f"   FAILED: {failure}", flush=True)
            print(f"   {seconds:.0f} s", flush=True)
    print(table(rows))
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "when": when,
        "quick": args.quick,
        "seconds": round(time.monotonic() - began, 1),
        "machine": machine(),
        "rows": [row.as_dict() for row in rows],
        "rows_by_scenario": rows_by_scenario,
        "failures": failures,
        "reports": reports,
    }
    (args.out / "bench.json").write_text(json.dumps(summary, indent=2, default=str))
    chart(rows, args.out / "bench.png", f"tork_ray against its baselines, {when}{' (quick)' if args.quick else ''}")
    print(f"saved {args.out / 'bench.json'} and {args.out / 'bench.png'} ({summary['seconds']} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
