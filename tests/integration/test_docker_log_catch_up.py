"""A container's whole output reaches its task's log, even when Docker's follow stream misses it: a stream
opened as the container exits can end at once, empty (seen about once in 30 quick tasks on a busy daemon)."""

from __future__ import annotations

import contextlib
from typing import Any

from docker.errors import NotFound

from tests.conftest import TEST_IMAGE
from tests.integration.conftest import LiveEngine
from tests.integration.test_runtime_docker import run_job, task_log
from tork_ray.runtime.docker_exec import ContainerOutput, catch_up
from tork_ray.runtime.workspace import LineTail

PRINTED = "one\ntwo\nno newline at the end"


def test_the_catch_up_sends_what_the_stream_missed_and_nothing_twice(docker_client: Any) -> None:
    container = docker_client.containers.create(TEST_IMAGE, ["sh", "-c", f"printf '{PRINTED}'"])
    try:
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == 0
        for seen in (0, len("one\n"), len(PRINTED)):  # the stream missed all, the tail, or nothing
            sent: list[str] = []
            output = ContainerOutput(sent.append, LineTail())
            output.sent = seen
            catch_up(container, output)
            assert "".join(sent) == PRINTED[seen:]
            assert output.sent == len(PRINTED)
        sent = []
        failed = ContainerOutput(sent.append, LineTail())
        container.remove()
        catch_up(container, failed)  # removed meanwhile (a cancel): nothing to send, nothing raised
        assert sent == []
    finally:
        with contextlib.suppress(NotFound):
            container.remove(force=True)


def test_quick_tasks_that_print_and_exit_keep_their_whole_log(live_engine: LiveEngine) -> None:
    tasks = "\n".join(
        f"""      - name: quick {i}
        image: {TEST_IMAGE}
        run: echo -n quick {i} done"""
        for i in range(20)
    )
    body = f"""
name: quick printers
tasks:
  - name: all at once
    parallel:
      tasks:
{tasks}
"""
    job = run_job(live_engine, body, timeout=180)
    assert job["state"] == "COMPLETED", job
    children = [t for t in live_engine.http.get(f"/jobs/{job['id']}").json()["execution"] if t["name"] != "all at once"]
    logs = {t["name"]: task_log(live_engine, t["id"]) for t in children}
    assert logs == {f"quick {i}": f"quick {i} done" for i in range(20)}
