"""`submit --follow` and `jobs logs --follow`: a live view of a job's tasks (state, duration, the job's
progress) with its log lines streamed above it, until the job ends. Ctrl-C offers to cancel the job."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tork_ray.cli import output
from tork_ray.client import Client
from tork_ray.errors import TorkError, WaitTimedOut
from tork_ray.sdk.models import Job, LogLine

REFRESH_SECONDS = 0.5


class LogPump:
    """Follows the job's log stream on a thread of its own; lines (or the stream's error) land in a queue."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.lines: queue.Queue[LogLine] = queue.Queue()
        self.error: TorkError | None = None
        self._thread = threading.Thread(target=self._run, args=(client, job_id), daemon=True, name="tork-log")
        self._thread.start()

    def _run(self, client: Client, job_id: str) -> None:
        try:
            for line in client.follow_job_log(job_id):
                self.lines.put(line)
        except TorkError as exc:
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def drain(self) -> list[LogLine]:
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out


def view(job: Job) -> Group:
    """The job's header, progress bar and one row per task."""
    header = Text.assemble(
        ("job ", "bold"), (job.id, ""), "  ", (job.name or "", "bold"), "  ", output.state(job.state)
    )
    progress = job.progress or (100.0 if job.state == "COMPLETED" else 0.0)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=100, completed=progress, width=40), Text(f"{progress:.0f}%"))
    tasks = output.table(
        None,
        ("#", "TASK", "STATE", "DURATION", "PROGRESS"),
        (
            (
                t.position,
                t.name or t.id,
                output.state(t.state),
                output.duration(t.started_at, output.task_ended_at(t)),
                output.percent(t.progress),
            )
            for t in job.execution
        ),
    )
    return Group(header, bar, tasks)


def task_names(job: Job) -> dict[str, str]:
    return {task.id: task.name or task.id[:8] for task in job.execution}


def follow(
    client: Client, job_id: str, timeout: float | None = None, *, live: bool = True, to_stderr: bool = False
) -> Job:
    """Shows the job until it has ended (and its log stream with it); returns the final job. WaitTimedOut after
    `timeout` seconds (the job runs on). `live`: the Rich view of the tasks; else log lines only, plain (on
    stderr with `to_stderr`, for --json)."""
    watch = _Watch(client, job_id, timeout)
    if not live:
        stream = sys.stderr if to_stderr else sys.stdout
        return watch.run(lambda text: print(text.plain, file=stream, flush=True), None)
    job = client.get_job(job_id)
    with Live(view(job), console=output.console, auto_refresh=False, redirect_stdout=False) as shown:
        return watch.run(shown.console.print, lambda job: shown.update(view(job), refresh=True))


class _Watch:
    def __init__(self, client: Client, job_id: str, timeout: float | None) -> None:
        self.client, self.job_id, self.timeout = client, job_id, timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def run(self, emit: Callable[[Text], None], update: Callable[[Job], None] | None) -> Job:
        pump = LogPump(self.client, self.job_id)
        job = self.client.get_job(self.job_id)
        while True:
            print_lines(pump.drain(), task_names(job), emit)
            if job.ended and pump.done:
                break
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise WaitTimedOut(f"job {self.job_id} is still {job.state} after {self.timeout:g}s")
            time.sleep(REFRESH_SECONDS)  # the view's refresh period: the job is polled for its tasks' states
            job = self.client.get_job(self.job_id)
            if update is not None:
                update(job)
        print_lines(pump.drain(), task_names(job), emit)
        if pump.error is not None:
            output.errors.print(f"log stream: {pump.error.message}", markup=False)
        return job


def print_lines(lines: list[LogLine], names: dict[str, str], emit: Callable[[Text], None]) -> None:
    for task_id, line in lines:
        emit(Text.assemble((f"[{names.get(task_id, task_id[:8])}] ", "dim"), line))
