"""A step that runs no shell of its own (its own `cmd`, an entrypoint like [/bin/echo]) gets its env from the
env file through a /bin/sh wrapper: `docker inspect`, `podman inspect` and `ps` show none of it, and the step
does exactly what it did. An image without /bin/sh runs the old way, and its log says so. Real Docker and
Podman, through their runtimes."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE, require
from tests.integration import odd_images
from tests.integration.test_redaction_canary import Released, Watcher
from tests.polling import poll_until
from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.base import RunRequest, Step

ODD_ARGS = ("a b", "it's", '"q"', "$HOME", "`id`", "*", "", "x  y")
WRAPPER = ["/bin/sh", "-c", '. /tork/env && exec "$@"', "sh"]


class Engine:
    """One runtime (Docker or Podman) and how to inspect the containers of a task."""

    def __init__(self, kind: str, runtime: Any, inspect: Callable[[str], list[dict[str, Any]]]) -> None:
        self.kind = kind
        self.runtime = runtime
        self.inspect = inspect

    def image(self, name: str) -> str:
        return odd_images.ensure(self.kind, name)


def docker_engine(docker_client: Any) -> Engine:
    from tork_ray.runtime.docker import DockerRuntime

    def inspect(task_id: str) -> list[dict[str, Any]]:
        found = docker_client.containers.list(all=True, filters={"label": f"tork_ray.task-id={task_id}"})
        return [docker_client.api.inspect_container(container.id) for container in found]

    return Engine("docker", DockerRuntime(client=docker_client), inspect)


def podman_engine() -> Engine:
    from tork_ray.runtime.podman import PodmanRuntime

    ready = shutil.which("podman") is not None and (
        subprocess.run(["podman", "image", "exists", TEST_IMAGE], capture_output=True, check=False).returncode == 0
    )
    require(ready, f"podman with the test image {TEST_IMAGE}")

    def inspect(task_id: str) -> list[dict[str, Any]]:
        label = f"label=tork_ray.task-id={task_id}"
        ids = subprocess.run(["podman", "ps", "-aq", "--filter", label], capture_output=True, text=True).stdout.split()
        if not ids:
            return []
        shown = subprocess.run(["podman", "inspect", *ids], capture_output=True, text=True, check=True).stdout
        return json.loads(shown)  # type: ignore[no-any-return]

    return Engine("podman", PodmanRuntime(), inspect)


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    made = docker_engine(request.getfixturevalue("docker_client")) if request.param == "docker" else podman_engine()
    yield made
    made.runtime.remove_orphans("env-wrapping")


class Run:
    """Runs one step as a task in a thread; each log chunk is seen while the task's container still exists
    (the runtime removes it only after the last chunk), so the test can inspect it then."""

    def __init__(self, engine: Engine, step: Step, on_log: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.request = RunRequest(task_id=uuid.uuid4().hex, job_id="j", scope="env-wrapping", main=step)
        self.released = Released()
        engine.runtime.tracker = self.released
        self.logs: list[str] = []
        self.inspected: list[dict[str, Any]] = []
        self.outcome: dict[str, Any] = {}
        self._on_log = on_log

    def log(self, text: str) -> None:
        self.logs.append(text)
        if not self.inspected:
            self.inspected = self.engine.inspect(self.request.task_id)
        if self._on_log:
            self._on_log(text)

    def go(self) -> threading.Thread:
        def target() -> None:
            try:
                self.outcome["result"] = self.engine.runtime.run(self.request, self.log, lambda _: None)
            except Exception as exc:  # reported by the test
                self.outcome["error"] = exc

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    def finish(self) -> Any:
        self.go().join(120)
        return self.outcome

    @property
    def text(self) -> str:
        return "".join(self.logs)


def argv_of(shown: dict[str, Any]) -> list[str]:
    """What the container runs, as inspect shows it (Docker and Podman alike)."""
    return [shown["Path"], *shown["Args"]]


def canary() -> str:
    return "cnry" + uuid.uuid4().hex[:12]


def test_a_steps_own_cmd_gets_its_env_from_the_file(engine: Engine) -> None:
    secret = canary()
    # Its own cmd, no `run`: held until the test has looked at the running container and the process list.
    script = 'echo "ready $#|$1|$2"; until [ -e /tork/go ]; do sleep 0.05; done; printf %s "$TOKEN" >$TORK_OUTPUT'
    cmd = ("sh", "-c", script, "zero", "a b", "it's $HOME")
    step = Step(name="main", image=TEST_IMAGE, cmd=cmd, env={"TOKEN": secret})
    run = Run(engine, step)
    with Watcher(secret) as watcher:  # every command line, sampled over and over from before the create
        worker = run.go()
        poll_until(lambda: "ready" in run.text or run.outcome, 60, "the step to start")
        (shown,) = engine.inspect(run.request.task_id)
        assert shown["State"]["Running"] is True
        assert secret not in json.dumps(shown)
        assert argv_of(shown) == [*WRAPPER, *step.cmd]
        assert run.released.workspace is not None
        (run.released.workspace / "main" / "go").touch()
        worker.join(60)
    assert watcher.seen == [] and watcher.rounds > 0
    assert run.outcome == {"result": secret}  # the program had its env, whole
    assert run.text == "ready 2|a b|it's $HOME\n"  # its arguments verbatim


def test_a_non_shell_entrypoint_does_what_it_did(engine: Engine) -> None:
    secret = canary()
    echo = Step(name="main", image=TEST_IMAGE, entrypoint=("/bin/echo",), cmd=ODD_ARGS)
    wrapped = Run(engine, replace(echo, env={"T": secret}))
    assert wrapped.finish() == {"result": ""}
    plain = Run(engine, echo)
    assert plain.finish() == {"result": ""}
    assert wrapped.text == plain.text == " ".join(ODD_ARGS) + "\n"  # the same output, every argument verbatim
    (shown,) = wrapped.inspected  # seen while the container still existed
    assert secret not in json.dumps(shown) and argv_of(shown) == [*WRAPPER, "/bin/echo", *ODD_ARGS]


def test_the_environment_and_exit_code_are_what_they_were(engine: Engine) -> None:
    # `env` through the wrapper: the configured variables and the sourced one, nothing of the shell's.
    run = Run(engine, Step(name="main", image=TEST_IMAGE, cmd=("env",), env={"TOKEN": "t0k", "UID": "7"}))
    assert run.finish() == {"result": ""}
    names = sorted(line.partition("=")[0] for line in run.text.splitlines())
    extra = ["TERM", "container"] if engine.kind == "podman" else []
    assert names == sorted(["HOME", "HOSTNAME", "PATH", "TOKEN", "TORK_OUTPUT", "TORK_PROGRESS", "UID", *extra])
    assert "TOKEN=t0k" in run.text.splitlines()

    def failure(env: dict[str, str]) -> str:
        step = Step(name="main", image=TEST_IMAGE, entrypoint=("/bin/busybox",), cmd=("sh", "-c", "exit 7"), env=env)
        error = Run(engine, step).finish()["error"]
        assert isinstance(error, RuntimeFailure)
        return error.message

    assert failure({"TOKEN": "t"}) == failure({})  # "exit code 7" / "container exited with code 7"


def test_an_image_without_sh_runs_the_old_way_and_says_so(engine: Engine) -> None:
    secret = canary()
    image = engine.image(odd_images.NO_SHELL)
    run = Run(engine, Step(name="echoes", image=image, entrypoint=("/bin/echo",), cmd=ODD_ARGS, env={"TOKEN": secret}))
    assert run.finish() == {"result": ""}
    note = (
        f"tork: the env of step 'echoes' is in its container's configuration (`{engine.kind} inspect` shows it): "
        f"image {image} has no /bin/sh to source it from a file\n"
    )
    assert run.text == note + " ".join(ODD_ARGS) + "\n"
    (shown,) = run.inspected
    assert argv_of(shown) == ["/bin/echo", *ODD_ARGS]  # made again, unwrapped
    if engine.kind == "docker":  # Podman's comes from an --env-file: inspect shows it just the same
        assert f"TOKEN={secret}" in shown["Config"]["Env"]
    # The worker now knows the image has no shell: the next such task is made the old way at once, the same.
    assert list(engine.runtime.shells._known.values()) == [False]
    again = Run(engine, run.request.main)
    assert again.finish() == {"result": ""} and again.text == run.text


def test_a_shell_reached_through_symlinks_is_found(engine: Engine) -> None:
    # /bin -> usr/bin, /usr/bin/sh -> busybox: the stat follows both, as the kernel would.
    secret = canary()
    image = engine.image(odd_images.MERGED_USR)
    run = Run(engine, Step(name="main", image=image, cmd=("env",), env={"TOKEN": secret}))
    assert run.finish() == {"result": ""}
    assert f"TOKEN={secret}" in run.text.splitlines()
    (shown,) = run.inspected
    assert secret not in json.dumps(shown) and argv_of(shown) == [*WRAPPER, "env"]


def test_no_leftovers(engine: Engine) -> None:
    run = Run(engine, Step(name="main", image=engine.image(odd_images.NO_SHELL), cmd=("/bin/echo",), env={"A": "1"}))
    run.finish()
    poll_until(lambda: engine.inspect(run.request.task_id) == [], 30, "no container left")
    workspace = run.released.workspace
    assert workspace is not None
    poll_until(lambda: not Path(workspace).exists(), 30, "the task's directory removed (in the background)")


def test_a_sidecar_running_its_own_cmd_is_wrapped_too(docker_client: Any) -> None:
    from tork_ray.runtime.base import Probe, Sidecar

    engine = docker_engine(docker_client)
    secret = canary()
    serve = 'mkdir -p /www && printf %s "$TOKEN" > /www/index.html && exec httpd -f -p 8080 -h /www'
    web = Step(name="web", image=TEST_IMAGE, cmd=("sh", "-c", serve), env={"TOKEN": secret})
    main = Step(name="main", image=TEST_IMAGE, run="echo asking; wget -q -O $TORK_OUTPUT http://web:8080/index.html")
    run = Run(engine, main)
    run.request = replace(run.request, sidecars=(Sidecar(step=web, probe=Probe(port=8080, path="/index.html")),))
    assert run.finish() == {"result": secret}  # the sidecar's program had its env
    assert "asking\n" in run.text
    assert len(run.inspected) == 2  # seen while both ran: the sidecar and the main step
    assert secret not in json.dumps(run.inspected)
    (sidecar,) = [shown for shown in run.inspected if shown["Path"] == "/bin/sh"]  # main's is Tork's `sh -c`
    assert argv_of(sidecar) == [*WRAPPER, "sh", "-c", serve]
    engine.runtime.remove_orphans("env-wrapping")
