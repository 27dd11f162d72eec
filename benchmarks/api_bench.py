"""`python -m benchmarks.api_bench`: the API under a steady load with 100,000 jobs in the store."""

# Fills a fresh SQLite store with 100,000 finished jobs (bulk insert through the Store), starts the engine as
# `make run` does (`tork-ray run standalone`, its own process), then sends a steady, open-loop mix of requests
# from a few client threads: GET /health (the baseline), GET /jobs?q=<word> for words of different reach, and
# POST /jobs. Submitted jobs go to a queue no node serves, so they wait in the coordinator's backlog: the
# figure is the cost of the API and the coordinator's submit path, not of running containers.
# Goals (issue 5): search p95 <= 50 ms, submit p50 <= 5 ms.

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx

from tork_ray.api.background import free_port
from tork_ray.domain.models import Job
from tork_ray.domain.states import JobState
from tork_ray.store.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
TORK_RAY = Path(sys.executable).parent / "tork-ray"
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]
RARE = "quasar"  # in about 1% of the jobs
SUBMIT = b"""
name: bench submit
tasks:
  - name: waits
    image: tork-ray-test:latest
    queue: bench-unserved
    run: echo hi
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs in the store (default 100,000)")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second, all kinds (default 40)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the steady load (default 30)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the measured (default 3)")
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="stdlib",
        help="HTTP client: stdlib (lean, the server's latency; default) or httpx (what tork_ray.Client adds)",
    )
    return parser.parse_args()


def seed_jobs(count: int, seed: int = 7) -> Iterator[Job]:
    rng = random.Random(seed)
    states = [JobState.COMPLETED] * 85 + [JobState.FAILED] * 10 + [JobState.CANCELLED] * 5
    for i in range(count):
        words = rng.sample(WORDS, 2)
        description = " ".join(rng.choices(WORDS, k=6)) + (f" {RARE}" if rng.random() < 0.01 else "")
        state = rng.choice(states)
        yield Job(
            name=f"Job {i} {words[0]} {words[1]}",
            description=description,
            tags=[rng.choice(WORDS)],
            state=state,
            task_count=1,
            position=2,
            inputs={"size": str(i % 100)},
            secrets={"token": f"tok-{i}"},
            tasks=[{"name": "work", "image": "busybox", "run": "echo hi"}],
            error="exit code 1" if state is JobState.FAILED else None,
        )


def start_engine(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TORK_DATA_DIR": str(data_dir),
        "TORK_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
        "TORK_RAY_NAMESPACE": f"api_bench_{os.getpid()}",
        "TORK_WORKER_QUEUES_DEFAULT": "1",
        "RAY_AUTH_MODE": "disabled",
        # A fresh local Ray even if another cluster on this host was started with `ray start`.
        "RAY_ADDRESS": "local",
    }
    log = (data_dir / "engine.log").open("ab")
    process = subprocess.Popen([str(TORK_RAY), "run", "standalone"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"engine exited with {process.returncode}; see {data_dir / 'engine.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("status") == "UP":
                return process
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("engine not healthy within 180 s")


class StdlibClient:
    """The standard library's client on a kept-alive connection, lean as curl or a Go client would be."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


class HttpxClient:
    """httpx, as tork_ray.Client uses: about 0.6 ms of Python per request more, on the server's two cores."""

    def __init__(self, host: str, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://{host}:{port}", timeout=30)

    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        return self.http.request(method, path, content=body, headers=headers).status_code

    def close(self) -> None:
        self.http.close()


CLIENTS: dict[str, type[StdlibClient] | type[HttpxClient]] = {"stdlib": StdlibClient, "httpx": HttpxClient}


def steady_load(url: str, rate: float, seconds: float, clients: int, client: str) -> dict[str, list[float]]:
    """Open loop: request i is due at start + i / rate whatever the answers' speed; kinds take turns."""
    kinds: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
        ("health", "GET", "/health", None, {}),
        ("search rare word", "GET", f"/jobs?{urlencode({'q': RARE})}", None, {}),
        ("search common word", "GET", f"/jobs?{urlencode({'q': 'alpha'})}", None, {}),
        ("search state word", "GET", f"/jobs?{urlencode({'q': 'completed'})}", None, {}),
        ("submit", "POST", "/jobs", SUBMIT, {"Content-Type": "text/yaml"}),
    ]
    total = int(rate * seconds)
    latencies: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.5
    address = urlsplit(url)

    def worker() -> None:
        http = CLIENTS[client](address.hostname or "127.0.0.1", address.port or 80)
        try:
            for i in counter:
                name, method, path, body, headers = kinds[i % len(kinds)]
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing the open loop, not synchronisation
                began = time.perf_counter()
                status = http(method, path, body, headers)
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    latencies[name].append(elapsed)
                    if status != 200:
                        failures[name] += 1
        finally:
            http.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"requests failed: {dict(failures)}")
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summarise(latencies: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    base = statistics.median(latencies["health"])
    return {
        name: {
            "n": len(values),
            "p50_ms": round(percentile(values, 50), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "max_ms": round(max(values), 2),
            "p50_vs_health": round(percentile(values, 50) / base, 2),
        }
        for name, values in latencies.items()
    }


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="tork-api-bench-") as tmp:
        data_dir = Path(tmp)
        store = Store(f"sqlite:///{data_dir / 'tork.db'}")
        began = time.perf_counter()
        store.import_jobs(seed_jobs(args.jobs))
        store.close()
        seeded = time.perf_counter() - began
        print(f"seeded {args.jobs} jobs in {seeded:.1f}s")
        port = free_port()
        engine = start_engine(data_dir, port)
        try:
            url = f"http://127.0.0.1:{port}"
            # Warm-up: connections, caches, Ray workers.
            steady_load(url, args.rate, args.warmup, args.clients, args.client)
            latencies = steady_load(url, args.rate, args.seconds, args.clients, args.client)
        finally:
            engine.send_signal(signal.SIGINT)
            engine.wait(timeout=120)
    figures = summarise(latencies)
    search_p95 = max(v["p95_ms"] for k, v in figures.items() if k.startswith("search"))
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "jobs_in_store": args.jobs,
        "seed_seconds": round(seeded, 1),
        "load": {"rate_per_s": args.rate, "seconds": args.seconds, "clients": args.clients, "client": args.client},
        "figures": figures,
        "goals": {
            "search p95 <= 50 ms": {"worst_p95_ms": search_p95, "met": search_p95 <= 50},
            "submit p50 <= 5 ms": {"p50_ms": figures["submit"]["p50_ms"], "met": figures["submit"]["p50_ms"] <= 5},
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"api_bench-{args.client}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
