"""The root of the tork-ray command: its global options (where the API is, the credentials) and main()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from tork_ray.cli import output
from tork_ray.client import Client
from tork_ray.errors import TorkError

app = typer.Typer(
    name="tork-ray",
    help="Tork's workflow engine, on Ray: run the engine, submit and follow jobs, manage them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@dataclass
class Target:
    """Where client commands go and as whom; options first, then TORK_* variables."""

    endpoint: str | None
    user: str | None
    password: str | None
    token: str | None

    def client(self) -> Client:
        return Client(self.endpoint, username=self.user, password=self.password, token=self.token)


def target(ctx: typer.Context) -> Target:
    found: Target = ctx.find_root().obj
    return found


@app.callback()
def root(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            "-e",
            envvar="TORK_ENDPOINT",
            help="The API's address [default: http://localhost:8000]",
            show_envvar=True,
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Basic auth username (default: $TORK_USERNAME)")] = None,
    password: Annotated[
        str | None, typer.Option(help="Basic auth password (default: $TORK_PASSWORD; prefer the variable)")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="The API key, sent as a Bearer token (default: $TORK_TOKEN)")
    ] = None,
) -> None:
    """Client commands reach the API at --endpoint ($TORK_ENDPOINT); credentials come from --user/--password
    or --token, else $TORK_USERNAME/$TORK_PASSWORD or $TORK_TOKEN.

    Exit codes: 0 done; 1 refused by the API (bad input, not found, not allowed); 2 bad command line; 3 the job
    failed; 4 the job was cancelled; 5 --timeout passed; 6 the engine is unreachable or down; 130 Ctrl-C."""
    ctx.obj = Target(endpoint, user, password, token)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns its exit code (see root())."""
    from tork_ray.cli import commands  # noqa: F401  (registers the commands on `app`)

    command = typer.main.get_command(app)
    try:
        # Standalone: Typer shows usage errors (exit 2) and turns typer.Exit and Ctrl-C (130) into SystemExit.
        command.main(args=argv, prog_name="tork-ray", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (output.OK if exc.code is None else output.ERROR)
    except TorkError as exc:
        output.errors.print(f"error: {exc.message}", markup=False, highlight=False)
        return output.exit_code(exc)
    return output.OK
