"""Live logs as server-sent events: a task's (or a whole job's) log lines as they are stored, redacted."""

# How it follows: the worker ships log text to the coordinator about once a second and the coordinator stores
# each batch as a part; a stream polls the store for parts it has not sent yet every `log_poll_seconds`
# (0.25 s by default), each read and its redaction on the API's thread pool, never on the event loop. Polling
# the store, not the coordinator, keeps streams off the coordinator's event loop and works the same from any
# API process (uvicorn or a Ray Serve replica). A stream ends once its task (or job) has ended and a short
# grace period has passed (the last part can be stored just after the final state: the two travel by different
# paths).

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from tork_ray.api.backend import Backend
from tork_ray.api.views import job_hidden
from tork_ray.domain.models import Job, Task
from tork_ray.domain.redact import StreamRedactor
from tork_ray.domain.states import JOB_TERMINAL, TASK_TERMINAL
from tork_ray.store.logs import STREAM_BATCH

END_GRACE_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: str, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n")[: -1 if text.endswith("\n") else None]] if text else []


class _Follower:
    """The polling loop both streams share: poll, send, and decide when the thing followed has ended."""

    def __init__(self, b: Backend, ended: Callable[[], str | None]) -> None:
        self.b = b
        self._ended = ended
        self._ended_at: float | None = None
        self._last_sent = time.monotonic()
        self.final_state: str | None = None

    def done(self, got_full_batch: bool) -> bool:
        if got_full_batch:
            return False
        state = self._ended()
        if state is None:
            return False
        self.final_state = state
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        return time.monotonic() - self._ended_at >= END_GRACE_SECONDS

    async def pause(self) -> str | None:
        await asyncio.sleep(self.b.settings.api.log_poll_seconds)
        if time.monotonic() - self._last_sent >= KEEPALIVE_SECONDS:
            self._last_sent = time.monotonic()
            return ": keepalive\n\n"
        return None

    def sent(self) -> None:
        self._last_sent = time.monotonic()


async def _follow(b: Backend, follower: _Follower, poll: Callable[[], tuple[str, bool]]) -> AsyncIterator[str]:
    """Runs `poll` (store reads and redaction: blocking) on the API's thread pool until the stream is over."""

    def step() -> tuple[str, bool]:
        text, full_batch = poll()
        return text, follower.done(full_batch)  # `done` reads the store too: the same trip to the pool

    while True:
        text, over = await b.offload(step)
        if text:
            yield text
            follower.sent()
        if over:
            return
        if keepalive := await follower.pause():
            yield keepalive


async def task_log_events(b: Backend, task: Task, job: Job) -> AsyncIterator[str]:
    """`event: log` with one log line as data, per line; then `event: end` with the task's final state."""
    redactor = await b.offload(lambda: b.redactor.stream(job_hidden(b, job)))
    after = 0

    def ended() -> str | None:
        current = b.store.get_task(task.id)
        return None if current is not None and current.state not in TASK_TERMINAL else _state(current)

    def poll() -> tuple[str, bool]:
        nonlocal after
        parts = b.store.log_parts_after(task.id, after)
        out: list[str] = []
        for part in parts:
            after = part["number"]
            out.extend(sse(line, "log") for line in _lines(redactor.feed(part["contents"])))
        return "".join(out), len(parts) >= STREAM_BATCH

    follower = _Follower(b, ended)
    async for text in _follow(b, follower, poll):
        yield text
    if rest := "".join(sse(line, "log") for line in _lines(await b.offload(redactor.finish))):
        yield rest
    yield sse(json.dumps({"taskId": task.id, "state": follower.final_state}), "end")


class _JobParts:
    """The parts of every task of a job, in the order they were stored, each task's text redacted on its own."""

    def __init__(self, b: Backend, job: Job) -> None:
        self.b = b
        self.job = job
        self.redactors: dict[str, StreamRedactor] = {}
        self.since: datetime | None = None
        self.seen_at_since: set[str] = set()

    def redactor_of(self, task_id: str) -> StreamRedactor:
        # Made on a task's first part, when its evaluated definition (and any secret rendered into it) exists.
        if task_id not in self.redactors:
            current = self.b.store.get_job(self.job.id) or self.job
            self.redactors[task_id] = self.b.redactor.stream(job_hidden(self.b, current))
        return self.redactors[task_id]

    def poll(self) -> tuple[str, bool]:
        found = self.b.store.job_log_since(self.job.id, self.since, len(self.seen_at_since))
        parts = [p for p in found if p["id"] not in self.seen_at_since]
        out: list[str] = []
        for part in parts:
            at = part.pop("_at")
            if at != self.since:
                self.since, self.seen_at_since = at, set()
            self.seen_at_since.add(part["id"])
            out.extend(
                _job_line(part["taskId"], line)
                for line in _lines(self.redactor_of(part["taskId"]).feed(part["contents"]))
            )
        return "".join(out), len(parts) >= STREAM_BATCH

    def finish(self) -> str:
        return "".join(
            _job_line(task_id, line)
            for task_id, redactor in self.redactors.items()
            for line in _lines(redactor.finish())
        )


def _job_line(task_id: str, line: str) -> str:
    return sse(json.dumps({"taskId": task_id, "line": line}), "log")


async def job_log_events(b: Backend, job: Job) -> AsyncIterator[str]:
    """`event: log` with {"taskId", "line"} as data, per line of any task of the job; `event: end` at its end."""

    def ended() -> str | None:
        current = b.store.get_job(job.id)
        return None if current is not None and current.state not in JOB_TERMINAL else _state(current)

    parts = _JobParts(b, job)
    follower = _Follower(b, ended)
    async for text in _follow(b, follower, parts.poll):
        yield text
    if rest := await b.offload(parts.finish):
        yield rest
    yield sse(json.dumps({"jobId": job.id, "state": follower.final_state}), "end")


def _state(record: Any) -> str:
    return str(record.state) if record is not None else "DELETED"
