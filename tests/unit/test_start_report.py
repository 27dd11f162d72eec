"""The worker's side of a start reported with the result (worker/start_report.py): a task that ends within its
start_report_delay sends no task_started call and brings its start with its outcome; a longer one reports the
start when the delay is up; progress and log parts flow before the start is reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_runtime_shell import SHELL, Recorder, request
from tests.polling import poll_until
from tork_ray.worker.start_report import StartReport, StartTimer
from tork_ray.worker.task import execute

GATE = "until [ -e {gate} ]; do sleep 0.02; done"


def starts(recorder: Recorder) -> list[tuple[Any, ...]]:
    return [args for name, args in recorder.calls if name == "task_started"]


def test_a_report_is_sent_at_its_deadline_unless_withdrawn_and_at_once_without_delay() -> None:
    timer = StartTimer()
    sent: list[str] = []
    withdrawn = timer.schedule(0.05, lambda: sent.append("withdrawn"))
    assert timer.withdraw(withdrawn) is True
    timer.schedule(0.1, lambda: sent.append("kept"))  # a later deadline: by its send, the first one was due
    poll_until(lambda: sent == ["kept"], 10, "the kept report sent")
    assert sent == ["kept"]  # the withdrawn one never was, though its deadline has passed
    early = timer.schedule(0.01, lambda: sent.append("early"))  # earlier than nothing: wakes the idle thread
    poll_until(lambda: "early" in sent, 10, "the early report sent")
    assert timer.withdraw(early) is False  # already sent: a task's end changes nothing
    StartReport(0, lambda: sent.append("at once"), timer)
    assert sent[-1] == "at once"


def test_a_task_within_the_delay_reports_no_start_of_its_own_and_brings_it_with_its_outcome() -> None:
    recorder = Recorder()
    before = datetime.now().astimezone()
    outcome = execute(request("echo -n done > $TORK_OUTPUT", start_report_delay=60.0), recorder, SHELL, "node-1")
    assert outcome["result"] == "done" and outcome["nodeId"] == "node-1"
    assert before <= datetime.fromisoformat(outcome["startedAt"]) <= datetime.now().astimezone()
    assert starts(recorder) == []


def test_a_failing_task_within_the_delay_brings_its_start_too() -> None:
    recorder = Recorder()
    outcome = execute(request("exit 3", start_report_delay=60.0), recorder, SHELL, "node-1")
    assert outcome["error"].startswith("error executing command: exit status 3")
    assert outcome["nodeId"] == "node-1" and "startedAt" in outcome
    assert starts(recorder) == []


class Background:
    """execute() on a thread of its own, so the test can look at what it reports while it runs."""

    def __init__(self, run: str, delay: float, recorder: Recorder) -> None:
        self.outcome: dict[str, str] = {}
        self._thread = threading.Thread(
            target=lambda: self.outcome.update(
                execute(request(run, start_report_delay=delay), recorder, SHELL, "node-1")
            ),
            daemon=True,
        )
        self._thread.start()

    def join(self) -> dict[str, str]:
        poll_until(lambda: not self._thread.is_alive(), 60, "the task to end")
        return self.outcome


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "go"
    yield path
    path.touch()  # whatever happened, a gated task still running ends


def test_a_task_past_the_delay_reports_its_start_once_with_the_time_it_started(gate: Path) -> None:
    recorder = Recorder()
    run = Background(GATE.format(gate=gate), 0.2, recorder)
    poll_until(lambda: starts(recorder), 30, "the start reported once the delay is up")
    gate.touch()
    outcome = run.join()
    assert starts(recorder) == [("shell-task", "node-1", outcome["startedAt"])]  # once, dated at the start
    assert outcome["result"] == ""


def test_progress_and_log_parts_flow_before_the_start_is_reported(gate: Path) -> None:
    recorder = Recorder()
    script = f"echo 40 > $TORK_PROGRESS; echo first line; {GATE.format(gate=gate)}"
    run = Background(script, 3600.0, recorder)
    poll_until(lambda: "first line" in recorder.logs(), 30, "a log part shipped (about a second in)")
    poll_until(lambda: any(name == "task_progress" for name, _ in recorder.calls), 30, "the progress sent")
    assert starts(recorder) == []  # all of it before any start report
    gate.touch()
    outcome = run.join()
    assert starts(recorder) == [] and outcome["nodeId"] == "node-1"


def test_the_setting_reads_from_env_or_toml_and_refuses_what_is_not_a_duration(tmp_path: Path) -> None:
    from tork_ray.errors import BadRequest
    from tork_ray.settings import load_settings

    assert load_settings({"TORK_CONFIG": ""}).worker.start_report_seconds() == 0.05  # the default
    env = load_settings({"TORK_CONFIG": "", "TORK_WORKER_START_REPORT_DELAY": "0"})
    assert env.worker.start_report_seconds() == 0.0
    config = tmp_path / "config.toml"
    config.write_text('[worker]\nstart_report_delay = "200ms"\n[worker.queues]\ndefault = 3\n')
    toml = load_settings({"TORK_CONFIG": str(config)})
    assert toml.worker.start_report_seconds() == 0.2 and toml.queues == {"default": 3}
    for bad in ("soon", "-1s"):
        with pytest.raises(BadRequest, match=r"worker\.start_report_delay"):
            load_settings({"TORK_CONFIG": "", "TORK_WORKER_START_REPORT_DELAY": bad})
