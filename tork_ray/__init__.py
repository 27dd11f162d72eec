"""tork_ray: Tork's job files and REST API, run on Ray with containers as tasks."""

__version__ = "0.1.0"
