"""How the command shows answers: Rich tables for people, JSON for scripts; and its exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tork_ray.errors import JobFailed, TorkError, Unavailable, WaitTimedOut
from tork_ray.sdk.models import ApiModel, Job, Task

# Exit codes scripts can rely on (README: "The tork-ray command").
OK = 0
ERROR = 1  # the API refused the request (bad input, not found, not allowed) or another error
USAGE = 2  # a wrong command line (Click's own code)
JOB_FAILED = 3
JOB_CANCELLED = 4
TIMED_OUT = 5  # --timeout passed before the job ended (it runs on)
UNAVAILABLE = 6  # the engine cannot be reached, or answers that it is down (503)
INTERRUPTED = 130  # Ctrl-C

JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table (for scripts)")]

# Tables may be wider than a pipe's default 80 columns: ids are never cut.
console = Console(soft_wrap=False)
errors = Console(stderr=True)


def exit_code(exc: TorkError) -> int:
    if isinstance(exc, JobFailed):
        return JOB_CANCELLED if exc.job.state == "CANCELLED" else JOB_FAILED
    if isinstance(exc, WaitTimedOut):
        return TIMED_OUT
    if isinstance(exc, Unavailable):
        return UNAVAILABLE
    return ERROR


def job_exit_code(job: Job) -> int:
    return {"COMPLETED": OK, "CANCELLED": JOB_CANCELLED}.get(job.state, JOB_FAILED)


def print_json(value: Any) -> None:
    if isinstance(value, ApiModel):
        value = value.to_json()
    elif isinstance(value, list):
        value = [item.to_json() if isinstance(item, ApiModel) else item for item in value]
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        out.add_column(name, no_wrap=name in ("ID", "TASK ID"), overflow="fold")
    for row in rows:
        # Text, not markup: a job named "[red]x" is shown as it is.
        out.add_row(*(value if isinstance(value, Text) else Text("" if value is None else str(value)) for value in row))
    return out


STATE_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "RUNNING": "cyan",
    "SCHEDULED": "blue",
    "UP": "green",
    "DOWN": "red",
    "ACTIVE": "green",
    "PAUSED": "yellow",
}


def state(value: str) -> Text:
    return Text(value, style=STATE_STYLES.get(value, ""))


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def duration(started: datetime | None, ended: datetime | None) -> str:
    if started is None:
        return ""
    seconds = ((ended or datetime.now(UTC)) - started).total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def task_ended_at(task: Task) -> datetime | None:
    return task.completed_at or task.failed_at


def percent(progress: float | None) -> str:
    return f"{progress:.0f}%" if progress else ""
