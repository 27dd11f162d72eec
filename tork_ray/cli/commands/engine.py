"""Commands that run the engine: `run standalone|coordinator`, `worker` (a node joining a cluster), `resources`."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tork_ray.cli.app import app
from tork_ray.errors import BadRequest

if TYPE_CHECKING:
    from tork_ray.settings import Settings


class Mode(StrEnum):
    standalone = "standalone"
    coordinator = "coordinator"


@app.command(rich_help_panel="Engine")
def run(
    mode: Annotated[
        Mode,
        typer.Argument(
            help="standalone: a local Ray + the coordinator + the API (what `make run` starts); coordinator: join "
            "a Ray cluster (ray.address, default auto), start the coordinator actor and deploy the API on Ray Serve "
            "(what cluster.yaml's head runs)"
        ),
    ] = Mode.standalone,
    uvicorn: Annotated[
        bool, typer.Option("--uvicorn", help="coordinator mode: serve the API here, not on Serve")
    ] = False,
) -> None:
    """Run the engine in the foreground (settings: TORK_* variables and the TOML config)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tork_ray.worker.interrupts import restore_sigint

    # Either mode starts Ray processes (and the API's): none may inherit an ignored SIGINT from our launcher.
    if restore_sigint():
        logging.getLogger("tork_ray").info("SIGINT was ignored by the launcher: handling restored")
    from tork_ray.settings import load_settings

    settings = load_settings()
    if mode is Mode.standalone:
        from tork_ray.standalone import serve

        serve(settings)
    else:
        from tork_ray.cluster import run_coordinator

        run_coordinator(settings, with_serve=not uvicorn)


@app.command(rich_help_panel="Engine")
def resources(
    head: Annotated[
        bool, typer.Option("--head", help="For the head node: add the resource the coordinator and API run on")
    ] = False,
) -> None:
    """Print the `ray start --resources` JSON for this node's queues (TORK_WORKER_QUEUES_*)."""
    from tork_ray.cluster import queue_resources
    from tork_ray.settings import load_settings

    typer.echo(queue_resources(load_settings(), head=head))


def _queues(settings: Settings, given: list[str]) -> Settings:
    """The settings with --queue NAME=SLOTS options in place of the configured queues."""
    if not given:
        return settings
    queues: dict[str, int] = {}
    for option in given:
        name, _, slots = option.partition("=")
        if not name.strip() or not slots.strip().isdigit():
            raise BadRequest(f"--queue {option!r}: expected NAME=SLOTS, e.g. default=2")
        queues[name.strip()] = int(slots)
    return replace(settings, queues=queues)


def ray_command() -> str:
    """The `ray` executable beside this Python's (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


@app.command(rich_help_panel="Engine")
def worker(
    address: Annotated[
        str, typer.Option("--address", "-a", envvar="TORK_RAY_ADDRESS", help="The Ray cluster's head (host:port)")
    ],
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue", "-q", help="NAME=SLOTS, repeatable (default: the TORK_WORKER_QUEUES_* settings, default=1)"
        ),
    ] = None,
    block: Annotated[
        bool, typer.Option(help="Stay in the foreground until stopped (Ctrl-C leaves the cluster)")
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the `ray start` command instead of running it")
    ] = False,
) -> None:
    """Join a Ray cluster as a node that runs the tasks of the given queues (`ray start` with their resources)."""
    from tork_ray.cluster import queue_resources
    from tork_ray.settings import load_settings

    settings = _queues(load_settings(), queue or [])
    command = [ray_command(), "start", f"--address={address}", f"--resources={queue_resources(settings)}"]
    if block:
        command.append("--block")
    if dry_run:
        typer.echo(shlex.join(command))
        return
    sys.stdout.flush()
    os.execv(command[0], command)  # ray start is the process from here on: signals reach it directly
