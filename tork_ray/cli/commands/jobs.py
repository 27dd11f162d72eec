"""`submit FILE` and `jobs ls|get|cancel|restart|logs`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.text import Text

from tork_ray.cli import output
from tork_ray.cli.app import app, target
from tork_ray.cli.follow import follow, print_lines, task_names
from tork_ray.cli.output import JsonOption
from tork_ray.client import Client
from tork_ray.sdk.models import Job, JobSummary, LogLine

jobs_app = typer.Typer(help="List, inspect, cancel and restart jobs; read or follow their logs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs", rich_help_panel="Jobs")

TimeoutOption = Annotated[
    float | None, typer.Option(help="With --wait/--follow: give up after this many seconds (exit 5; the job runs on)")
]


def read_document(file: Path) -> str | Path:
    """The file to send, or standard input's text for '-'; a missing file is a usage error (exit 2)."""
    if str(file) == "-":
        return sys.stdin.read()
    if not file.is_file():
        raise typer.BadParameter(f"{file} does not exist or is not a file", param_hint="FILE")
    return file


def summary_table(jobs: list[JobSummary], title: str | None = None) -> object:
    return output.table(
        title,
        ("ID", "NAME", "STATE", "CREATED", "TASKS", "PROGRESS"),
        (
            (j.id, j.name, output.state(j.state), output.when(j.created_at), j.task_count, output.percent(j.progress))
            for j in jobs
        ),
    )


def job_view(job: Job) -> Group:
    head = Text.assemble((job.name or "", "bold"), "  ", output.state(job.state), f"  {job.id}")
    lines: list[object] = [head]
    if job.error:
        lines.append(Text(f"error: {job.error}", style="red"))
    if job.result:
        lines.append(Text(f"result: {job.result}"))
    lines.append(
        output.table(
            None,
            ("#", "TASK ID", "NAME", "STATE", "DURATION", "RESULT / ERROR"),
            (
                (
                    t.position,
                    t.id,
                    t.name,
                    output.state(t.state),
                    output.duration(t.started_at, output.task_ended_at(t)),
                    (t.error or t.result or "").strip(),
                )
                for t in job.execution
            ),
        )
    )
    return Group(*lines)  # type: ignore[arg-type]


def _interrupted(client: Client, job_id: str) -> int:
    """Ctrl-C while following: offer to cancel the job (asked only at a terminal; elsewhere it runs on)."""
    output.errors.print()
    if sys.stdin.isatty() and typer.confirm(f"Cancel job {job_id}?", default=False, err=True):
        client.cancel_job(job_id)
        output.errors.print(f"job {job_id} cancelled")
    else:
        output.errors.print(f"job {job_id} left running (tork-ray jobs cancel {job_id})", markup=False)
    return output.INTERRUPTED


def _watch(client: Client, job_id: str, live: bool, timeout: float | None, as_json: bool) -> Job:
    try:
        if live:
            return follow(client, job_id, timeout, live=sys.stdout.isatty() and not as_json, to_stderr=as_json)
        return client.wait(job_id, timeout=timeout, raise_on_failure=False)
    except KeyboardInterrupt:
        raise typer.Exit(_interrupted(client, job_id)) from None


def _show_finished(job: Job, as_json: bool) -> None:
    if as_json:
        output.print_json(job)
    else:
        output.console.print(job_view(job))
    if (code := output.job_exit_code(job)) != output.OK:
        raise typer.Exit(code)


@app.command(rich_help_panel="Jobs")
def submit(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="The job: a YAML or JSON file ('-': standard input)", allow_dash=True),
    ],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait until the job ends; exit code by its state")] = False,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Show the job's tasks live and stream its logs until it ends")
    ] = False,
    timeout: TimeoutOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the job's id (for scripts)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a job. With --wait or --follow the exit code says how it ended: 0 completed, 3 failed,
    4 cancelled, 5 timed out; Ctrl-C offers to cancel it."""
    document = read_document(file)
    with target(ctx).client() as client:
        accepted = client.submit(document)
        if quiet:
            typer.echo(accepted.id)
        if not (wait or follow_):
            if quiet:
                return
            if as_json:
                output.print_json(accepted)
            else:
                output.console.print(summary_table([accepted], "submitted"))
            return
        if not (as_json or quiet):
            output.errors.print(f"submitted job {accepted.id}", markup=False, highlight=False)
        finished = _watch(client, accepted.id, follow_, timeout, as_json)
        if quiet:
            raise typer.Exit(output.job_exit_code(finished))
        _show_finished(finished, as_json)


@jobs_app.command("ls")
def list_jobs(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="Words (all must match), tag:x, tags:a,b")] = None,
    page: Annotated[int, typer.Option(help="Page number, from 1")] = 1,
    size: Annotated[int, typer.Option(help="Jobs per page (at most 20)")] = 10,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    with target(ctx).client() as client:
        found = client.list_jobs(query, page, size)
    if as_json:
        output.print_json(found)
        return
    title = f"jobs: page {found.number} of {max(found.total_pages, 1)}, {found.total_items} in all"
    output.console.print(summary_table(found.items, title))


@jobs_app.command("get")
def get_job(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait until the job ends; exit code by its state")] = False,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job and its tasks."""
    with target(ctx).client() as client:
        job = _watch(client, job_id, False, timeout, as_json) if wait else client.get_job(job_id)
    if wait:
        _show_finished(job, as_json)
    elif as_json:
        output.print_json(job)
    else:
        output.console.print(job_view(job))


@jobs_app.command("cancel")
def cancel_job(ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Cancel a pending, scheduled or running job."""
    with target(ctx).client() as client:
        client.cancel_job(job_id)
    output.console.print(f"cancelled {job_id}", markup=False, highlight=False)


@jobs_app.command("restart")
def restart_job(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Show it live until it ends")] = False,
    timeout: TimeoutOption = None,
) -> None:
    """Run a failed or cancelled job again from its current task."""
    with target(ctx).client() as client:
        client.restart_job(job_id)
        output.errors.print(f"restarted {job_id}", markup=False, highlight=False)
        if follow_:
            _show_finished(_watch(client, job_id, True, timeout, False), False)


@jobs_app.command("logs")
def job_logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the log as written until the job ends")
    ] = False,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Full-text search of the stored log")] = None,
    size: Annotated[int, typer.Option(help="Log parts to show (newest, at most 100)")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Print a job's log: the stored parts (oldest first), or with --follow every line as written."""
    with target(ctx).client() as client:
        names = task_names(client.get_job(job_id))
        if follow_:
            for line in client.follow_job_log(job_id):
                if as_json:
                    output.print_json({"taskId": line.task_id, "line": line.line})
                else:
                    print_lines([line], names, _echo)
            return
        parts = client.job_log(job_id, q=query, size=size)
    if as_json:
        output.print_json(parts)
        return
    for part in reversed(parts.items):  # the API answers newest first
        print_lines([LogLine(part.task_id, line) for line in part.contents.splitlines()], names, _echo)


def _echo(text: Text) -> None:
    output.console.print(text, highlight=False)
