"""The scenarios `python -m benchmarks` runs: each a module run in its own process (one Ray per process), the JSON it
writes under results/, and how that JSON becomes rows of the table (a figure, its baseline, their ratio, a goal).

To add one: write `benchmarks/<name>.py` whose `main()` measures tork_ray against a baseline in the same run and
writes results/<name>.json, then `register(Scenario(...))` below with its full and `--quick` arguments and a
function from that JSON to rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Goal:
    """`ratio` (or the figure itself, with `on_value`) compared to `limit`: "<=" lower is better, ">=" higher."""

    op: str
    limit: float
    on_value: bool = False

    def met(self, value: float, ratio: float) -> bool:
        subject = value if self.on_value else ratio
        return subject <= self.limit if self.op == "<=" else subject >= self.limit

    def __str__(self) -> str:
        return f"{'' if self.on_value else 'ratio '}{self.op} {self.limit:g}"


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    unit: str
    value: float  # tork_ray's figure
    baseline: str  # what it is measured against
    baseline_value: float
    goals: tuple[Goal, ...] = ()
    kind: str = "overhead"  # overhead (lower is better) | throughput (higher is better): the chart's panel

    @property
    def ratio(self) -> float:
        return round(self.value / self.baseline_value, 3) if self.baseline_value else float("nan")

    @property
    def met(self) -> bool | None:
        return all(goal.met(self.value, self.ratio) for goal in self.goals) if self.goals else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in ("scenario", "metric", "unit", "value", "baseline", "baseline_value")},
            "ratio": self.ratio,
            "goals": [str(goal) for goal in self.goals],
            "met": self.met,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Scenario:
    name: str
    module: str  # run as `python -m <module> <args>`
    full: tuple[str, ...]
    quick: tuple[str, ...]
    result: str  # the file under results/ the module writes
    rows: Callable[[dict[str, Any]], list[Row]]
    about: str = ""
    # Rough seconds of its `--quick` run on two busy cores: `--quick` starts the longest first, so that its
    # lanes end together (the longest last would leave one lane running it alone).
    quick_seconds: int = 5


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    SCENARIOS[scenario.name] = scenario
    return scenario
