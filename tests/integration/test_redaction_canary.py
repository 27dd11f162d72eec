"""A canary secret planted everywhere in a job never comes out of any endpoint in clear (Decisions table)."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_IMAGE, require
from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates, running_containers
from tests.polling import poll_until


def canary_job(canary: str, extra: str = "") -> str:
    return f"""
name: canary job {canary[-6:]}
description: mentions {canary} in passing
tags: [canary]
secrets:
  token: {canary}
inputs:
  db_password: {canary}
  note: uses {canary} inside
output: "{{{{ tasks.first }}}}"
webhooks:
  - url: http://127.0.0.1:9/hook
    event: none.such
    headers:
      X-Token: "{{{{ secrets.token }}}}"
{extra}
tasks:
  - name: speaks the secret
    var: first
    image: {TEST_IMAGE}
    env:
      TOKEN: "{{{{ secrets.token }}}}"
      MY_SECRET: {canary}
      PLAIN: "{{{{ inputs.note }}}}"
    run: |
      echo "token is $TOKEN and $PLAIN"
      echo -n "out $TOKEN" > $TORK_OUTPUT
  - name: fails with it
    image: {TEST_IMAGE}
    env:
      TOKEN: "{{{{ secrets.token }}}}"
    run: |
      echo "about to fail: $TOKEN"
      exit 3
"""


class Collector:
    """Every body an endpoint answered, to be searched for the canary at the end."""

    def __init__(self, http: httpx.Client, canary: str) -> None:
        self.http = http
        self.canary = canary
        self.seen: list[tuple[str, str]] = []

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.seen.append((f"{method} {path} {kwargs.get('params', '')}", response.text))
        return response

    def stream(self, path: str) -> str:
        with self.http.stream("GET", path, timeout=60) as response:
            text = "".join(response.iter_text())
        self.seen.append((f"GET {path}", text))
        return text

    def leaks(self) -> list[str]:
        return [where for where, text in self.seen if self.canary in text]


@pytest.fixture(scope="module")
def canary() -> str:
    return "cnry" + uuid.uuid4().hex[:12]


def test_the_canary_never_leaves_the_server(live_engine: LiveEngine, canary: str) -> None:
    c = Collector(live_engine.http, canary)
    headers = {"Content-Type": "text/yaml"}
    submitted = c.call("POST", "/jobs", content=canary_job(canary).encode(), headers=headers)
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json()["inputs"]["db_password"] == "[REDACTED]"

    waited = c.call("POST", "/jobs", content=canary_job(canary, extra="wait: {timeout: 60s}").encode(), headers=headers)
    assert waited.status_code == 200 and waited.json()["state"] == "FAILED", waited.text

    stream = c.stream(f"/jobs/{job_id}/log/stream")  # follows the first job live, to its end
    assert "[REDACTED]" in stream
    job = c.call("GET", f"/jobs/{job_id}").json()
    assert job["state"] == "FAILED"
    assert job["secrets"] == {"token": "[REDACTED]"}
    assert job["execution"][0]["result"] == "out [REDACTED]"
    assert job["context"]["tasks"]["first"] == "out [REDACTED]"
    assert "[REDACTED]" in job["error"]

    for task in job["execution"]:
        c.call("GET", f"/tasks/{task['id']}")
        log = c.call("GET", f"/tasks/{task['id']}/log").json()
        assert "[REDACTED]" in "".join(p["contents"] for p in log["items"])
        c.call("GET", f"/tasks/{task['id']}/log", params={"q": "token"})
        c.stream(f"/tasks/{task['id']}/log/stream")
    c.call("GET", f"/jobs/{job_id}/log")
    c.call("GET", f"/jobs/{job_id}/log", params={"q": "fail"})
    c.call("GET", f"/jobs/{job_id}/log", params={"q": canary})
    c.call("GET", "/jobs")
    listed = c.call("GET", "/jobs", params={"q": "tag:canary", "size": 20}).json()
    assert job_id in {item["id"] for item in listed["items"]}
    c.call("GET", "/jobs", params={"q": "passing"})
    c.call("GET", "/jobs", params={"q": canary})
    for path in ("/health", "/queues", "/queues/default", "/nodes", "/metrics", "/metrics/prometheus"):
        c.call("GET", path)

    # Error texts: an invalid document whose error message quotes a secret value.
    bad = f"name: bad\nsecrets: {{token: {canary}}}\ntasks: [{{name: t, image: x, run: y, timeout: {canary}}}]"
    rejected = c.call("POST", "/jobs", content=bad.encode(), headers=headers)
    assert rejected.status_code == 400 and "[REDACTED]" in rejected.json()["message"]
    assert c.leaks() == []
    assert len(c.seen) >= 25


def test_canary_hidden_while_the_task_is_still_running(
    live_engine: LiveEngine, canary: str, docker_client: Any
) -> None:
    slow = f"""
name: slow canary
secrets: {{token: {canary}}}
tasks:
  - name: t
    image: {TEST_IMAGE}
    env: {{TOKEN: "{{{{ secrets.token }}}}", MY_PASSWORD: {canary}}}
    run: |
      echo "now $TOKEN"
      sleep 30
"""
    job_id = live_engine.submit(slow)["id"]
    c = Collector(live_engine.http, canary)

    def first_log() -> tuple[str, str] | None:
        job = c.call("GET", f"/jobs/{job_id}").json()
        if not job["execution"]:
            return None
        task_id = job["execution"][0]["id"]
        parts = c.call("GET", f"/tasks/{task_id}/log").json()["items"]
        return (task_id, parts[0]["contents"]) if parts else None

    task_id, first = poll_until(first_log, 60, "the running task's first log line")
    assert first == "now [REDACTED]\n"  # the script saw its env (the value, hidden on the way out)
    # What anyone who can reach Docker or list processes sees of the running task: no value of its env.
    (container,) = docker_client.containers.list(filters={"label": f"tork_ray.task-id={task_id}"})
    inspected = json.dumps(docker_client.api.inspect_container(container.id))
    assert canary not in inspected and "TORK_OUTPUT=/tork/stdout" in inspected
    assert command_lines_with(canary) == []
    c.call("GET", f"/jobs/{job_id}/log")
    c.call("GET", "/jobs", params={"size": 20})
    c.call("PUT", f"/jobs/{job_id}/cancel")
    c.stream(f"/tasks/{task_id}/log/stream")
    assert json.loads(c.call("GET", f"/tasks/{task_id}").text)["state"] == "CANCELLED"
    assert c.leaks() == []


def command_lines_with(text: str) -> list[str]:
    """Command lines of this host's processes (`ps` shows them to every user) that contain `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            if text.encode() in line:
                found.append(line.replace(b"\0", b" ").decode(errors="replace"))
    return found


def at_rest_job(canary: str) -> str:
    """The canary in every field of a job that can carry it (tags are searchable and in clear by design)."""
    return f"""
name: canary at rest
description: typed in by mistake, {canary}, where search reads
tags: [canary-at-rest]
secrets:
  token: {canary}
inputs:
  db_password: {canary}
  note: uses {canary} inside
output: "{{{{ tasks.first }}}}"
tasks:
  - name: speaks the secret
    var: first
    image: {TEST_IMAGE}
    registry: {{username: someone, password: "{{{{ secrets.token }}}}"}}
    env:
      TOKEN: "{{{{ secrets.token }}}}"
      MY_SECRET: {canary}
      PLAIN: "{{{{ inputs.note }}}}"
    run: |
      echo "token is $TOKEN and $PLAIN"
      # Half of it, then (after the worker's once-a-second log flush) the rest: one secret in two parts.
      echo -n "$TOKEN" | head -c 8; sleep 1.5; echo "$TOKEN" | cut -c9-
      echo -n "out $TOKEN" > $TORK_OUTPUT
  - name: a child job
    subjob:
      name: "child of canary at rest, {{{{ secrets.token }}}}"
      secrets: {{token: "{{{{ secrets.token }}}}"}}
      output: "{{{{ tasks.child }}}}"
      tasks:
        - name: child speaks
          var: child
          image: {TEST_IMAGE}
          env: {{TOKEN: "{{{{ secrets.token }}}}"}}
          run: echo "child has $TOKEN" && echo -n "child $TOKEN" > $TORK_OUTPUT
  - name: "retried then failed, {{{{ secrets.token }}}}"
    image: {TEST_IMAGE}
    retry: {{limit: 1}}
    env: {{TOKEN: "{{{{ secrets.token }}}}"}}
    run: |
      echo "about to fail: $TOKEN"
      exit 3
"""


def store_files(live_engine: LiveEngine) -> dict[str, bytes]:
    """Every byte of the engine's SQLite files as they are now: the database, its -wal and -shm (no
    checkpoint is forced, so what only the write-ahead log holds is read too)."""
    path = Path(live_engine.settings.store_url.removeprefix("sqlite:///"))
    files = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}
    assert path.name in files and f"{path.name}-wal" in files
    return files


def test_the_canary_is_in_no_database_file_and_no_answer(live_engine: LiveEngine) -> None:
    canary = "cnry" + uuid.uuid4().hex[:12]
    c = Collector(live_engine.http, canary)
    submitted = c.call("POST", "/jobs", content=at_rest_job(canary).encode(), headers={"Content-Type": "text/yaml"})
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["id"]
    poll_until(lambda: c.call("GET", f"/jobs/{job_id}").json()["state"] == "FAILED", 120, "the job to fail")
    c.stream(f"/jobs/{job_id}/log/stream")
    job = c.call("GET", f"/jobs/{job_id}").json()
    first, child_task, retried = job["execution"][0], job["execution"][1], job["execution"][-1]
    assert first["result"] == "out [REDACTED]" and first["registry"]["password"] == "[REDACTED]"
    assert len(job["execution"]) == 4 and "[REDACTED]" in retried["error"]  # the retry ran too, and failed
    assert retried["name"] == "retried then failed, [REDACTED]"  # a task's name is rendered, then stored
    child = c.call("GET", f"/jobs/{child_task['subjob']['id']}").json()
    assert child["state"] == "COMPLETED" and child["result"] == "child [REDACTED]"
    for task in job["execution"] + child["execution"]:
        c.call("GET", f"/tasks/{task['id']}")
        c.call("GET", f"/tasks/{task['id']}/log")
        c.stream(f"/tasks/{task['id']}/log/stream")
    log = "".join(p["contents"] for p in c.call("GET", f"/tasks/{first['id']}/log").json()["items"][::-1])
    assert log.count("[REDACTED]") == 3, log  # the split secret too, and none of its halves in clear
    assert canary[:8] not in log and canary[8:] not in log
    c.call("GET", f"/jobs/{job_id}/log", params={"size": 100})
    c.call("GET", "/jobs", params={"q": "tag:canary-at-rest"})
    assert c.leaks() == []
    leaks = [name for name, data in store_files(live_engine).items() if canary.encode() in data]
    assert leaks == [], f"the canary is in clear in {leaks}"


class Released:
    """A tracker (runtime/base.py) that learns the task's directory, so the test can let its script end."""

    def __init__(self) -> None:
        self.workspace: Path | None = None

    def track(self, key: str, action: Any) -> None:
        if "workspace" in action:
            self.workspace = Path(action["workspace"])

    def untrack(self, key: str) -> None:
        pass


class Watcher:
    """Samples every process's command line, over and over, while a task starts and runs: a short-lived
    `podman create` is seen too."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list[str] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.seen += command_lines_with(self.text)
            self.rounds += 1


@pytest.fixture(params=["podman", "shell"])
def runtime(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    from tork_ray.runtime.podman import PodmanRuntime
    from tork_ray.runtime.shell import ShellRuntime
    from tork_ray.settings import RuntimeSettings

    if request.param == "shell":
        yield ShellRuntime(RuntimeSettings(type="shell", shell_cmd=("sh", "-c"))), "go"
        return
    import shutil
    import subprocess

    ready = shutil.which("podman") is not None and (
        subprocess.run(["podman", "image", "exists", TEST_IMAGE], capture_output=True, check=False).returncode == 0
    )
    require(ready, f"podman with the test image {TEST_IMAGE}")
    yield PodmanRuntime(), "/tork/go"


def test_no_process_command_line_carries_an_env_value(runtime: tuple[Any, str]) -> None:
    from tork_ray.runtime.base import RunRequest, Step

    engine, go = runtime
    canary = "cnry" + uuid.uuid4().hex[:12]
    released = Released()
    engine.tracker = released
    image = TEST_IMAGE if engine.kind == "podman" else ""
    main = Step(
        name="main",
        image=image,
        run=f'echo "ready $TOKEN $MULTI"\nwhile [ ! -e {go} ]; do sleep 0.05; done\nprintf %s "$TOKEN" >$TORK_OUTPUT',
        env={"TOKEN": canary, "MULTI": f"{canary}\nsecond line"},
    )
    request = RunRequest(task_id=uuid.uuid4().hex, job_id="j", scope=f"canary-{uuid.uuid4().hex[:6]}", main=main)
    logs: list[str] = []
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = engine.run(request, logs.append, lambda _: None)
        except Exception as exc:  # reported below
            outcome["error"] = exc

    with Watcher(canary) as watcher:
        worker = threading.Thread(target=run)
        worker.start()
        poll_until(lambda: "ready" in "".join(logs) or "error" in outcome, 60, "the task to start")
        assert released.workspace is not None
        # The shell runtime's tracked directory is the step's own; podman's holds one directory per step.
        step_dir = released.workspace if engine.kind == "shell" else released.workspace / "main"
        (step_dir / "go").touch()
        worker.join(60)
    assert outcome.get("result") == canary, outcome  # the script had its env, unchanged
    assert "".join(logs) == f"ready {canary} {canary}\nsecond line\n"
    print(f"{engine.kind}: {watcher.rounds} samples of every command line")
    assert watcher.seen == []
    # The env script goes with the task's directory, which is removed in the background after the result
    # (runtime/discard.py).
    workspace = released.workspace
    poll_until(lambda: not os.path.exists(workspace), 30, "the task's directory removed")


def test_a_tasks_own_shell_launcher_keeps_its_env_out_of_inspect(live_engine: LiveEngine, docker_client: Any) -> None:
    # `entrypoint: [/bin/sh, -c]` is a shell's launcher like Tork's default: its env is sourced, not configured.
    canary = f"CANARY-{uuid.uuid4().hex[:8]}"
    task = {
        "name": "own shell",
        "image": TEST_IMAGE,
        "entrypoint": ["/bin/sh", "-c"],
        "env": {"TOKEN": "{{ secrets.token }}"},
        "run": f'{GATED}; printf %s "${{#TOKEN}}" > $TORK_OUTPUT',
        "var": "length",
    }
    job_id = live_engine.submit_json({"name": "own shell", "secrets": {"token": canary}, "tasks": [task]})["id"]
    (container,) = poll_until(lambda: running_containers(docker_client, job_id), 60, "the task's container running")
    assert canary not in json.dumps(docker_client.api.inspect_container(container.id))
    poll_until(lambda: open_gates(docker_client, job_id), 30, "the task's gate opened")
    job = live_engine.wait_for(job_id)
    assert job["state"] == "COMPLETED", job.get("error")
    assert job["context"]["tasks"]["length"] == str(len(canary))  # the script saw the whole value


def test_a_step_with_no_shell_of_its_own_keeps_its_env_out_of_inspect(
    live_engine: LiveEngine, docker_client: Any
) -> None:
    # Its own cmd (no `run`), then an entrypoint that is no shell: both are wrapped in a /bin/sh that sources
    # the env file and execs what the container would have run.
    canary = f"CANARY-{uuid.uuid4().hex[:8]}"
    env = {"TOKEN": "{{ secrets.token }}"}
    held = f'{GATED}; printf %s "${{#TOKEN}}:$1" > $TORK_OUTPUT'
    tasks = [
        {"name": "own cmd", "image": TEST_IMAGE, "env": env, "cmd": ["sh", "-c", held, "sh", "a 'b' $c"], "var": "own"},
        {"name": "echo", "image": TEST_IMAGE, "env": env, "entrypoint": ["/bin/echo"], "cmd": ["x  y", "$TOKEN"]},
    ]
    job_id = live_engine.submit_json({"name": "no shell", "secrets": {"token": canary}, "tasks": tasks})["id"]
    (container,) = poll_until(lambda: running_containers(docker_client, job_id), 60, "the task's container running")
    assert canary not in json.dumps(docker_client.api.inspect_container(container.id))
    assert command_lines_with(canary) == []
    poll_until(lambda: open_gates(docker_client, job_id), 30, "the task's gate opened")
    job = live_engine.wait_for(job_id)
    assert job["state"] == "COMPLETED", job.get("error")
    assert job["context"]["tasks"]["own"] == f"{len(canary)}:a 'b' $c"  # the whole value; the argument verbatim
    echo = job["execution"][1]
    log = live_engine.http.get(f"/tasks/{echo['id']}/log").json()["items"]
    assert "".join(part["contents"] for part in log) == "x  y $TOKEN\n"  # echo's own arguments, not expanded
