"""Every command of tork-ray, each module registering its own on tork_ray.cli.app.app."""

from tork_ray.cli.commands import bench, engine, jobs, scheduled, system

__all__ = ["bench", "engine", "jobs", "scheduled", "system"]
