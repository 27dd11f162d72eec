"""The tork-ray command, run for real (a subprocess) against the session engine: every client command, its
tables and --json, its error paths and exit codes; `submit --follow` in a pseudo-terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.pty_session import PtySession
from tork_ray.cli import output

ROOT = Path(__file__).resolve().parents[2]
TORK_RAY = str(Path(sys.executable).parent / "tork-ray")


def command_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORK_")}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


@dataclass
class Cli:
    url: str
    tmp: Path

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        command = [TORK_RAY, "--endpoint", self.url, *args]
        return subprocess.run(command, input=stdin, env=command_env(**env), capture_output=True, text=True, timeout=180)

    def json(self, *args: str) -> object:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def file(self, text: str, suffix: str = ".yaml") -> str:
        path = self.tmp / f"{uuid.uuid4().hex[:8]}{suffix}"
        path.write_text(text)
        return str(path)


def job(name: str, run: str = "echo hello") -> str:
    lines = "".join(f"      {line}\n" for line in run.splitlines())
    return f"name: {name} {uuid.uuid4().hex[:6]}\ntasks:\n  - name: step\n    image: {TEST_IMAGE}\n    run: |\n{lines}"


@pytest.fixture
def cli(live_engine: LiveEngine, tmp_path: Path) -> Cli:
    return Cli(str(live_engine.http.base_url).rstrip("/"), tmp_path)


def test_submit_prints_the_job_and_exits_by_its_end(cli: Cli) -> None:
    done = cli("submit", cli.file(job("plain")))
    assert done.returncode == 0 and "submitted" in done.stdout and "PENDING" in done.stdout, done
    accepted = cli.json("submit", cli.file(job("as json")))
    assert accepted["state"] == "PENDING" and len(accepted["id"]) == 32  # type: ignore[index]
    done = cli("submit", "--wait", cli.file(job("waited", "echo the end")))
    assert done.returncode == output.OK and "COMPLETED" in done.stdout and "the end" not in done.stderr, done
    done = cli("submit", "--wait", cli.file(job("fails", "echo broken >&2; exit 3")))
    assert done.returncode == output.JOB_FAILED and "FAILED" in done.stdout, done
    done = cli("submit", "--wait", "--json", cli.file(job("fails json", "exit 1")))
    assert done.returncode == output.JOB_FAILED and json.loads(done.stdout)["state"] == "FAILED"
    done = cli("submit", "--wait", "-", stdin=job("from stdin"))
    assert done.returncode == 0 and "COMPLETED" in done.stdout


def test_submit_errors_and_exit_codes(cli: Cli) -> None:
    done = cli("submit", cli.file("name: x\ntasks: []\n"))
    assert done.returncode == output.ERROR and "error:" in done.stderr and "tasks" in done.stderr
    done = cli("submit", str(cli.tmp / "missing.yaml"))
    assert done.returncode == output.USAGE and "does not exist" in done.stderr
    done = cli("submit", "--wait", "--timeout", "0.5", cli.file(job("slow", "sleep 60")))
    assert done.returncode == output.TIMED_OUT and "still" in done.stderr, done
    job_id = done.stderr.split("submitted job ")[1].split()[0]
    assert cli("jobs", "cancel", job_id).returncode == 0
    done = cli("jobs", "get", job_id, "--wait")
    assert done.returncode == output.JOB_CANCELLED and "CANCELLED" in done.stdout, done
    done = cli("jobs", "restart", job_id)
    assert done.returncode == 0 and f"restarted {job_id}" in done.stderr
    assert cli("jobs", "cancel", job_id).returncode == 0
    assert cli("jobs", "get", job_id, "--wait").returncode == output.JOB_CANCELLED
    gone = "0" * 32
    for args in (("jobs", "get", gone), ("jobs", "cancel", gone), ("jobs", "logs", gone)):
        done = cli(*args)
        assert (done.returncode, done.stderr.strip()) == (output.ERROR, "error: job not found"), args
    assert cli("jobs", "ls", "--size", "many").returncode == output.USAGE
    unreachable = subprocess.run(
        [TORK_RAY, "--endpoint", "http://127.0.0.1:9", "jobs", "ls"], env=command_env(), capture_output=True, text=True
    )
    assert unreachable.returncode == output.UNAVAILABLE and "cannot reach" in unreachable.stderr
    assert cli("bogus").returncode == output.USAGE


def test_jobs_ls_get_and_logs(cli: Cli) -> None:
    word = "cli" + uuid.uuid4().hex[:8]
    done = cli("submit", "--wait", "--json", cli.file(job(word, "echo first\necho second")))
    finished = json.loads(done.stdout)
    job_id, task_id = finished["id"], finished["execution"][0]["id"]
    listed = cli("jobs", "ls", word)
    assert job_id in listed.stdout and "COMPLETED" in listed.stdout and "1 in all" in listed.stdout
    assert [j["id"] for j in cli.json("jobs", "ls", word)["items"]] == [job_id]  # type: ignore[index]
    shown = cli("jobs", "get", job_id)
    assert task_id in shown.stdout and "step" in shown.stdout and "COMPLETED" in shown.stdout
    assert cli.json("jobs", "get", job_id)["execution"][0]["state"] == "COMPLETED"  # type: ignore[index]
    assert cli("jobs", "logs", job_id).stdout.splitlines() == ["[step] first", "[step] second"]
    assert cli("jobs", "logs", job_id, "--follow").stdout.splitlines() == ["[step] first", "[step] second"]
    parts = cli.json("jobs", "logs", job_id, "--query", "second")
    assert parts["items"][0]["taskId"] == task_id  # type: ignore[index]


def test_scheduled_commands(cli: Cli) -> None:
    document = job("scheduled").replace("tasks:", "schedule:\n  cron: '0 0 1 1 *'\ntasks:", 1)
    created = cli.json("scheduled", "create", cli.file(document))
    scheduled_id = created["id"]  # type: ignore[index]
    assert created["state"] == "ACTIVE"  # type: ignore[index]
    assert scheduled_id in cli("scheduled", "ls", "--size", "20").stdout
    assert cli("scheduled", "pause", scheduled_id).returncode == 0
    assert cli.json("scheduled", "get", scheduled_id)["state"] == "PAUSED"  # type: ignore[index]
    assert cli("scheduled", "resume", scheduled_id).returncode == 0
    assert "ACTIVE" in cli("scheduled", "get", scheduled_id).stdout
    assert cli("scheduled", "delete", scheduled_id).returncode == 0
    done = cli("scheduled", "get", scheduled_id)
    assert done.returncode == output.ERROR and "not found" in done.stderr
    done = cli("scheduled", "create", cli.file(job("no schedule")))
    assert done.returncode == output.ERROR and "schedule" in done.stderr


def test_engine_state_commands(cli: Cli) -> None:
    health = cli("health")
    assert health.returncode == 0 and "UP" in health.stdout
    assert cli.json("health")["status"] == "UP"  # type: ignore[index]
    nodes = cli("nodes")
    assert "UP" in nodes.stdout and "default=2" in nodes.stdout and "other=1" in nodes.stdout
    assert cli.json("nodes")[0]["queues"] == {"default": 2, "other": 1}  # type: ignore[index]
    queues = cli("queues")
    assert "default" in queues.stdout and "other" in queues.stdout
    assert cli.json("queues", "other")["subscribers"] == 1  # type: ignore[index]
    assert "nodes online" in cli("metrics").stdout
    assert cli.json("metrics")["nodes"]["online"] == 1  # type: ignore[index]
    assert "tork_" in cli("metrics", "--prometheus").stdout
    done = cli("queues", "nope-" + uuid.uuid4().hex[:6])
    assert done.returncode == output.ERROR and "not found" in done.stderr


def test_engine_commands_and_completion(cli: Cli) -> None:
    done = cli("resources", "--head", TORK_WORKER_QUEUES_GPU="2")
    assert json.loads(done.stdout)["queue:gpu"] == 2 and "tork:head" in done.stdout
    done = cli("worker", "--address", "10.0.0.1:6379", "-q", "gpu=2", "-q", "default=1", "--dry-run")
    assert done.stdout.split()[1:4] == ["start", "--address=10.0.0.1:6379", '\'--resources={"queue:default":']
    assert "--block" in done.stdout
    done = cli("worker", "--address", "x:1", "-q", "gpu", "--dry-run")
    assert done.returncode == output.ERROR and "NAME=SLOTS" in done.stderr
    assert cli("run", "nowhere").returncode == output.USAGE
    completion = subprocess.run(
        [TORK_RAY],
        env=command_env(_TORK_RAY_COMPLETE="complete_bash", COMP_WORDS="tork-ray jobs ", COMP_CWORD="2"),
        capture_output=True,
        text=True,
    )
    assert set(completion.stdout.split()) >= {"ls", "get", "cancel", "restart", "logs"}, completion
    shown = cli("--show-completion", "bash")
    assert "_TORK_RAY_COMPLETE" in shown.stdout


def test_submit_follow_shows_tasks_and_logs_live_in_a_terminal(cli: Cli) -> None:
    document = job("followed", "echo line one\necho line two").replace(
        "tasks:\n", f"tasks:\n  - name: warmup\n    image: {TEST_IMAGE}\n    run: echo warming\n", 1
    )
    session = PtySession([TORK_RAY, "--endpoint", cli.url, "submit", "--follow", cli.file(document)], command_env())
    session.expect(r"\[warmup\] warming", 120)
    session.expect(r"\[step\] line two", 120)
    code = session.finish(120)
    screen = session.screen
    assert code == output.OK, screen
    assert "100%" in screen and "COMPLETED" in screen and "DURATION" in screen
    assert screen.index("[step] line one") < screen.index("[step] line two")


def test_ctrl_c_while_following_offers_to_cancel(cli: Cli, live_engine: LiveEngine) -> None:
    session = PtySession(
        [TORK_RAY, "--endpoint", cli.url, "submit", "--follow", cli.file(job("interrupted", "echo started; sleep 60"))],
        command_env(),
    )
    session.expect(r"\[step\] started", 120)
    job_id = session.expect(r"submitted job ([0-9a-f]{32})", 5).group(1)
    session.interrupt()
    session.expect(r"Cancel job [0-9a-f]{32}\? \[y/N\]", 30)
    session.send("y\n")
    assert session.finish(60) == output.INTERRUPTED, session.screen
    assert "cancelled" in session.screen
    assert live_engine.wait_for(job_id)["state"] == "CANCELLED"
