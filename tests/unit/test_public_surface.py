"""The package's public surface, importable on a client machine without starting (or importing) Ray."""

from __future__ import annotations

import subprocess
import sys


def test_public_names_import_without_ray() -> None:
    code = (
        "import sys, tork_ray; "
        "from tork_ray import AsyncClient, Client, Job, JobFailed, JobInput, JobState, Task, TaskState; "
        "from tork_ray import TorkError, submit; "
        "import tork_ray.cli.commands, tork_ray.aio; "
        "assert 'ray' not in sys.modules, 'importing tork_ray pulled in ray'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
