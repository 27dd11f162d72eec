"""`health`, `nodes`, `queues`, `metrics`: the engine's state."""

from __future__ import annotations

from typing import Annotated

import typer

from tork_ray.cli import output
from tork_ray.cli.app import app, target
from tork_ray.cli.output import JsonOption


@app.command(rich_help_panel="Engine")
def health(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check a running engine: exit 0 when UP, 6 when DOWN or out of reach."""
    with target(ctx).client() as client:
        answer = client.health()
    if as_json:
        output.print_json(answer)
    else:
        reason = f" ({answer.error})" if answer.error else ""
        output.console.print(output.state(answer.status), f"version {answer.version}{reason}", highlight=False)
    if not answer.up:
        raise typer.Exit(output.UNAVAILABLE)


@app.command(rich_help_panel="Engine")
def nodes(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The nodes serving queues, with their heartbeat, CPU and running tasks."""
    with target(ctx).client() as client:
        found = client.nodes()
    if as_json:
        output.print_json(found)
        return
    rows = (
        (
            n.id,
            n.hostname,
            output.state(n.status),
            ", ".join(f"{name}={slots}" for name, slots in sorted(n.queues.items())),
            n.task_count,
            "" if n.cpu_percent is None else f"{n.cpu_percent:.1f}%",
            output.when(n.last_heartbeat_at),
        )
        for n in found
    )
    output.console.print(output.table("nodes", ("ID", "HOST", "STATUS", "QUEUES", "TASKS", "CPU", "HEARTBEAT"), rows))


@app.command(rich_help_panel="Engine")
def queues(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One queue only")] = None,
    as_json: JsonOption = False,
) -> None:
    """Task queues: backlog, slots across the cluster, running tasks."""
    with target(ctx).client() as client:
        found = [client.queue(name)] if name else client.queues()
    if as_json:
        output.print_json(found[0] if name else found)
        return
    rows = ((q.name, q.size, q.subscribers, q.unacked) for q in found)
    output.console.print(output.table("queues", ("NAME", "WAITING", "SLOTS", "RUNNING"), rows))


@app.command(rich_help_panel="Engine")
def metrics(
    ctx: typer.Context,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Prometheus' text format, with more")] = False,
    as_json: JsonOption = False,
) -> None:
    """Running jobs and tasks, online nodes and their CPU."""
    with target(ctx).client() as client:
        if prometheus:
            typer.echo(client.prometheus_metrics(), nl=False)
            return
        found = client.metrics()
    if as_json:
        output.print_json(found)
        return
    rows = [
        ("jobs running", found.jobs.running),
        ("tasks running", found.tasks.running),
        ("nodes online", found.nodes.online),
        ("CPU (nodes online)", f"{found.nodes.cpu_percent:.1f}%"),
    ]
    output.console.print(output.table("metrics", ("METRIC", "VALUE"), rows))
