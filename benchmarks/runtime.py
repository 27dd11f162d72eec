"""Container tasks through tork_ray against the same containers run directly with the Docker SDK."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx

from benchmarks.engine import run_job

SCRIPT = "echo -n ok > $TORK_OUTPUT"


@dataclass
class Comparison:
    """Seconds per round for each side, rounds interleaved (raw, tork_ray, raw, ...) so drift hits both."""

    name: str
    containers: int
    raw: list[float] = field(default_factory=list)
    tork: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        raw, tork = statistics.median(self.raw), statistics.median(self.tork)
        return {
            "name": self.name,
            "containers": self.containers,
            "raw_seconds": self.raw,
            "tork_ray_seconds": self.tork,
            "raw_median": round(raw, 3),
            "tork_ray_median": round(tork, 3),
            "time_ratio": round(tork / raw, 3),  # tork_ray time / raw time: lower is better
            "throughput_ratio": round(raw / tork, 3),  # tork_ray containers/s over raw containers/s
            "raw_per_second": round(self.containers / raw, 2),
            "tork_ray_per_second": round(self.containers / tork, 2),
        }


def raw_container(client: docker.DockerClient, image: str) -> None:
    """What a trivial Tork task asks of Docker, done directly: create, start, wait, read the logs, remove."""
    container = client.containers.create(image, ["sh", "-c", "echo -n ok > /dev/null"], detach=True)
    try:
        container.start()
        container.wait()
        container.logs()
    finally:
        container.remove(force=True)


def raw_in_a_row(client: docker.DockerClient, image: str, count: int) -> None:
    for _ in range(count):
        raw_container(client, image)


def sequential_job(image: str, count: int) -> str:
    tasks = "".join(f"  - name: t{i}\n    image: {image}\n    run: {SCRIPT}\n" for i in range(count))
    return f"name: sequential\nwait:\n  timeout: 10m\ntasks:\n{tasks}"


def fanout_job(image: str, count: int) -> str:
    return f"""name: fan-out
wait:
  timeout: 10m
tasks:
  - name: fan
    each:
      list: "{{{{ sequence(0, {count}) }}}}"
      task:
        name: "item {{{{ item.index }}}}"
        image: {image}
        run: {SCRIPT}
"""


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def sequential(http: httpx.Client, client: docker.DockerClient, image: str, count: int, rounds: int) -> Comparison:
    """One job of `count` tasks (run one after another by definition) against `count` SDK runs in a row."""
    result = Comparison("sequential", count)
    body = sequential_job(image, count)
    for _ in range(rounds):
        result.raw.append(timed(lambda: raw_in_a_row(client, image, count)))
        result.tork.append(timed(lambda: run_job(http, body)))
    return result


def fanout(
    http: httpx.Client, client: docker.DockerClient, image: str, count: int, slots: int, rounds: int
) -> Comparison:
    """One `each` of `count` items on a queue of `slots` slots against `count` SDK runs on `slots` threads."""
    result = Comparison("fan-out", count)
    body = fanout_job(image, count)

    def raw() -> None:
        with ThreadPoolExecutor(max_workers=slots) as pool:
            list(pool.map(lambda _: raw_container(client, image), range(count)))

    for _ in range(rounds):
        result.raw.append(timed(raw))
        result.tork.append(timed(lambda: run_job(http, body)))
    return result
