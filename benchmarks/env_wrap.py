"""`python -m benchmarks.env_wrap`: what hiding a shell-less step's env costs per task, Docker and Podman.

Kinds of task, rounds interleaved in the same run, each through the runtime itself (no engine):
- `plain`: the step `entrypoint: [/bin/echo]` with no env: nothing to hide, the path every step took before.
- `wrapped`: the same step with one env variable, its image's /bin/sh known to the worker (every task after
  the first of an image): image inspect, the env file, create; the container runs `/bin/sh` first.
- `wrapped-first`: the same, the worker's ShellCache emptied first: plus the /bin/sh check (Docker: a stat
  through the archive API per symlink; Podman: `podman init`).
- `no-sh-plain`, `no-sh`, `no-sh-first`: the same three in an image without /bin/sh, where the first also
  creates, checks, removes and creates again the old way. Each extra is against the plain task of its image.
Besides, the Docker calls alone (image inspect, the /bin/sh check) timed in a loop. Figures are printed and
saved in benchmarks/results/env_wrap.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

from tests.integration import odd_images
from tork_ray.runtime.base import RunRequest, Step
from tork_ray.runtime.docker import DockerRuntime
from tork_ray.runtime.docker_wrap import container_has_shell, image_config
from tork_ray.runtime.podman import PodmanRuntime
from tork_ray.runtime.shellwrap import ShellCache

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("plain", "wrapped", "wrapped-first", "no-sh-plain", "no-sh", "no-sh-first")
BASELINE = {"wrapped": "plain", "wrapped-first": "plain", "no-sh": "no-sh-plain", "no-sh-first": "no-sh-plain"}


def step(kind: str, image: str, no_shell: str) -> Step:
    env = {} if kind.endswith("plain") else {"TOKEN": "secret"}
    image = no_shell if kind.startswith("no-sh") else image
    return Step(name="main", image=image, entrypoint=("/bin/echo",), cmd=("hi",), env=env)


def one_task(runtime: Any, main: Step, first: bool) -> float:
    if first:  # this runtime serves only the `-first` kinds: the others' keeps what it learnt
        runtime.shells = ShellCache()
    request = RunRequest(task_id=uuid.uuid4().hex, job_id="bench", scope="bench-env-wrap", main=main)
    started = time.perf_counter()
    runtime.run(request, lambda _: None, lambda _: None)
    return (time.perf_counter() - started) * 1000


def measure(make: Callable[[], Any], engine: str, image: str, tasks: int) -> dict[str, dict[str, float]]:
    """`make` gives a runtime: one serves the steady kinds, another (its cache emptied each time) the first."""
    no_shell = odd_images.ensure(engine, odd_images.NO_SHELL)
    steady, first = make(), make()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for kind in KINDS:  # warm-up: images present, the steady runtime's cache filled
        one_task(steady, step(kind, image, no_shell), False)
    for _ in range(tasks):
        for kind in KINDS:
            is_first = kind.endswith("-first")
            times[kind].append(one_task(first if is_first else steady, step(kind, image, no_shell), is_first))
    return {kind: summary(values) for kind, values in times.items()}


def docker_calls(client: docker.DockerClient, image: str, loops: int) -> dict[str, dict[str, float]]:
    inspect, stat = [], []
    created = client.api.create_container(image, command=["true"], labels={"tork_ray.scope": "bench-env-wrap"})
    try:
        for _ in range(loops):
            started = time.perf_counter()
            image_config(client, image)
            inspect.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            container_has_shell(client, created["Id"])  # /bin/sh -> /bin/busybox: two stats
            stat.append((time.perf_counter() - started) * 1000)
    finally:
        client.api.remove_container(created["Id"], force=True)
    return {"image inspect": summary(inspect), "/bin/sh check (2 stats)": summary(stat)}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.env_wrap", description=__doc__)
    parser.add_argument("--image", default=os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest"))
    parser.add_argument("--tasks", type=int, default=20, help="tasks of each kind per engine (default 20)")
    parser.add_argument("--loops", type=int, default=200, help="timed Docker calls of each kind (default 200)")
    args = parser.parse_args()
    client = docker.from_env()
    figures = {
        "docker": measure(lambda: DockerRuntime(client=client), "docker", args.image, args.tasks),
        "docker calls": docker_calls(client, args.image, args.loops),
        "podman": measure(PodmanRuntime, "podman", args.image, args.tasks),
    }
    for engine in ("docker", "podman"):
        for kind, baseline in BASELINE.items():
            extra = figures[engine][kind]["median_ms"] - figures[engine][baseline]["median_ms"]
            figures[engine][kind]["extra_median_ms"] = round(extra, 1)
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "env_wrap.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
