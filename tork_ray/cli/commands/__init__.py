"""Every command of tork-ray, each module registering its own on tork_ray.cli.app.app."""

from tork_ray.cli.commands import engine, jobs, scheduled, system

__all__ = ["engine", "jobs", "scheduled", "system"]
