"""Webhooks' costs: the coordinator's extra work per job life (outbox rows in the change's transaction), as a
ratio against the same jobs without webhooks (rounds interleaved), and the sender's calls per second against
a receiver in another process. `python -m benchmarks.webhooks_bench`; figures go to
benchmarks/results/webhooks_bench.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, Task
from tork_ray.domain.redact import Redactor
from tork_ray.domain.states import JobState, TaskState
from tork_ray.settings import LimitsSettings
from tork_ray.store.store import Store
from tork_ray.webhooks.config import WebhookSettings
from tork_ray.webhooks.outbox import Staging, WebhookOutbox
from tork_ray.webhooks.sender import WebhookSender

RESULTS = Path(__file__).parent / "results"


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(port: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    port.value = server.server_address[1]
    server.serve_forever()


def job_lives(writer: StateWriter, hooks: list[dict[str, Any]] | None, count: int) -> float:
    """ms per job life: created and started, its task run, completed (three transactions, as the engine's)."""
    started = time.perf_counter()
    for _ in range(count):
        job = Job(name="bench", task_count=1, secrets={"token": "s3cret"}, webhooks=hooks)
        job.context = {"inputs": {}, "secrets": job.secrets, "tasks": {}}
        task = Task(job_id=job.id, position=1, name="t")
        with writer.batch():
            writer.create_job(job)
            writer.move_job(job, JobState.SCHEDULED, position=1)
            writer.create_tasks([task])
            writer.move_task(task, TaskState.SCHEDULED)
        with writer.batch():
            writer.move_task(task, TaskState.RUNNING, node_id="n")
            writer.move_job(job, JobState.RUNNING)
        with writer.batch():
            writer.move_task(task, TaskState.COMPLETED, result="r")
            writer.update_job(job, position=2, progress=100.0)
            writer.move_job(job, JobState.COMPLETED)
    return (time.perf_counter() - started) / count * 1000


def raw_rate(url: str, count: int, concurrency: int = 8) -> float:
    """The baseline: bare httpx POSTs per second to the same receiver, as many in flight as the sender."""

    async def run() -> float:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient() as client:

            async def one() -> None:
                async with limit:
                    await client.post(url, content=b'{"state":"COMPLETED"}' * 20)

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count)))
            return count / (time.perf_counter() - started)

    return asyncio.run(run())


def pending(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM webhook_outbox WHERE state = 'pending'")).scalar())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = multiprocessing.Value("i", 0)
    receiver = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    receiver.start()
    while not port.value:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port.value}"
    hooks = [
        {"url": f"{url}/job", "headers": {"Authorization": "Bearer {{ secrets.token }}"}},
        {"url": f"{url}/task", "event": "task.StateChange"},
    ]
    with tempfile.TemporaryDirectory() as directory:
        store = Store(f"sqlite:///{directory}/bench.db", encryption_key="bench key")
        writer = StateWriter(store)
        staging = Staging(writer.stage, writer.job, writer.after_commit)
        writer.watch(WebhookOutbox(staging, Redactor(), LimitsSettings(), lambda: None))
        plain, hooked = [], []
        for _ in range(args.rounds):
            plain.append(job_lives(writer, None, args.jobs))
            hooked.append(job_lives(writer, hooks, args.jobs))
        calls = pending(store)
        sender = WebhookSender(store, WebhookSettings())
        started = time.perf_counter()
        sender.start()
        while pending(store):
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        sender.stop()
    baseline = raw_rate(f"{url}/raw", calls)
    receiver.terminate()
    figures = {
        "job_life_ms_without": statistics.median(plain),
        "job_life_ms_with_2_webhooks_6_calls": statistics.median(hooked),
        "ratio": statistics.median(hooked) / statistics.median(plain),
        "sender_calls": calls,
        "sender_calls_per_s": calls / elapsed,
        "sender_peak_in_flight": sender.peak_in_flight,
        "raw_httpx_posts_per_s": baseline,
        "sender_vs_raw": calls / elapsed / baseline,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webhooks_bench.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
