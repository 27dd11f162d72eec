"""`scheduled ls|create|get|pause|resume|delete`: jobs made on every tick of a cron schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tork_ray.cli import output
from tork_ray.cli.app import app, target
from tork_ray.cli.commands.jobs import read_document
from tork_ray.cli.output import JsonOption
from tork_ray.sdk.models import ScheduledJobSummary

scheduled_app = typer.Typer(help="Scheduled jobs: a job made on every tick of `schedule.cron`.", no_args_is_help=True)
app.add_typer(scheduled_app, name="scheduled", rich_help_panel="Jobs")
IdArgument = Annotated[str, typer.Argument(metavar="ID")]


def _table(items: list[ScheduledJobSummary], title: str | None) -> object:
    return output.table(
        title,
        ("ID", "NAME", "CRON", "STATE", "NEXT RUN"),
        ((s.id, s.name, s.cron, output.state(s.state), output.when(s.next_fire_at)) for s in items),
    )


@scheduled_app.command("ls")
def list_scheduled(
    ctx: typer.Context,
    page: Annotated[int, typer.Option(help="Page number, from 1")] = 1,
    size: Annotated[int, typer.Option(help="Per page (at most 20)")] = 10,
    as_json: JsonOption = False,
) -> None:
    """List scheduled jobs, newest first."""
    with target(ctx).client() as client:
        found = client.list_scheduled_jobs(page, size)
    if as_json:
        output.print_json(found)
    else:
        output.console.print(_table(found.items, f"scheduled jobs: {found.total_items} in all"))


@scheduled_app.command("create")
def create_scheduled(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="A job file with `schedule: {cron: ...}` ('-': stdin)", allow_dash=True),
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only its id (for scripts)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a scheduled job from a YAML or JSON file."""
    document = read_document(file)
    with target(ctx).client() as client:
        created = client.create_scheduled_job(document)
    if quiet:
        typer.echo(created.id)
    elif as_json:
        output.print_json(created)
    else:
        output.console.print(_table([created], "created"))


@scheduled_app.command("get")
def get_scheduled(ctx: typer.Context, scheduled_id: IdArgument, as_json: JsonOption = False) -> None:
    """Show a scheduled job (its secrets redacted)."""
    with target(ctx).client() as client:
        found = client.get_scheduled_job(scheduled_id)
    if as_json:
        output.print_json(found)
    else:
        output.console.print(_table([found], None))


@scheduled_app.command("pause")
def pause_scheduled(ctx: typer.Context, scheduled_id: IdArgument) -> None:
    """Pause: no more jobs until it is resumed."""
    with target(ctx).client() as client:
        client.pause_scheduled_job(scheduled_id)
    output.console.print(f"paused {scheduled_id}", markup=False, highlight=False)


@scheduled_app.command("resume")
def resume_scheduled(ctx: typer.Context, scheduled_id: IdArgument) -> None:
    """Resume from the next tick."""
    with target(ctx).client() as client:
        client.resume_scheduled_job(scheduled_id)
    output.console.print(f"resumed {scheduled_id}", markup=False, highlight=False)


@scheduled_app.command("delete")
def delete_scheduled(ctx: typer.Context, scheduled_id: IdArgument) -> None:
    """Delete it and every job it made."""
    with target(ctx).client() as client:
        client.delete_scheduled_job(scheduled_id)
    output.console.print(f"deleted {scheduled_id}", markup=False, highlight=False)
