"""`bench`: the benchmark harness (benchmarks/, `make bench`), run from the source checkout it ships with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from tork_ray.cli import output
from tork_ray.cli.app import app

# The harness is not part of the installed package: it lives beside tork_ray/ in a checkout of the repository.
CHECKOUT = Path(__file__).resolve().parents[3]


@app.command(rich_help_panel="Engine")
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Every scenario small: a smoke run (figures mean little)")
    ] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run this scenario (repeatable)")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Leave this scenario out (repeatable)")] = None,
    out: Annotated[Path | None, typer.Option(help="Where bench.json and bench.png go")] = None,
    parallel: Annotated[
        int | None, typer.Option(min=1, help="Scenarios run at once (default 1: none disturbs another's figures)")
    ] = None,
) -> None:
    """Measure the engine against its baselines in one run (raw subprocesses, raw Ray, the raw Docker SDK, ...):
    a table, bench.json and bench.png. Needs the source checkout (benchmarks/ beside tork_ray/)."""
    if not (CHECKOUT / "benchmarks" / "__main__.py").is_file():
        output.errors.print(
            f"error: the benchmarks ship with the source checkout, not with the installed package "
            f"(no benchmarks/ in {CHECKOUT}): run tork-ray bench from a clone of the repository",
            markup=False,
        )
        raise typer.Exit(output.ERROR)
    command = [sys.executable, "-m", "benchmarks"] + (["--quick"] if quick else [])
    command += [*(["--only", *only] if only else []), *(["--skip", *skip] if skip else [])]
    command += ["--out", str(out)] if out else []
    command += ["--parallel", str(parallel)] if parallel else []
    path = os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(command, cwd=CHECKOUT, env={**os.environ, "PYTHONPATH": path}, check=False)
    # The harness's own exit code: 2 for an unknown scenario name (argparse), 0 when it ran (it never judges).
    raise typer.Exit(done.returncode)
