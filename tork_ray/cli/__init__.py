"""The tork-ray command (Typer + Rich): run the engine, submit and follow jobs, manage jobs, scheduled jobs,
nodes and queues. `main(argv)` returns the exit code (tork_ray/cli/output.py)."""

from tork_ray.cli.app import app, main

__all__ = ["app", "main"]
