"""The reaper: when a worker process is SIGKILLed mid-task, what the task started is removed anyway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.conftest import TEST_IMAGE
from tests.polling import poll_until
from tork_ray.runtime.base import LABEL_ATTEMPT, LABEL_SCOPE, LABEL_TASK, RunRequest, Step
from tork_ray.worker.reaper import watch

WORKER = textwrap.dedent(
    """
    import json, subprocess, sys, time
    from tork_ray.worker.reaper import reaper
    action = json.loads(sys.argv[1])
    if action["kind"] == "pgid":
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        action["pgid"] = child.pid
    reaper().track("task", action)
    reaper().track("done", {"kind": "pgid", "pgid": 999999})
    reaper().untrack("done")
    action["reaper_pid"] = reaper()._process.pid
    print(json.dumps(action), flush=True)
    time.sleep(300)
    """
)


def start_worker(action: dict[str, Any]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(action)], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    return worker, json.loads(worker.stdout.readline())


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_watch_keeps_only_what_is_still_in_flight(tmp_path: Path) -> None:
    stream = tmp_path / "messages"
    lines = [
        {"add": "a", "action": {"kind": "pgid", "pgid": 1}},
        {"add": "b", "action": {"kind": "pgid", "pgid": 2}},
        {"del": "a"},
    ]
    stream.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    with stream.open("rb") as handle:
        assert watch(handle) == {"b": {"kind": "pgid", "pgid": 2}}


def test_watch_reads_a_pipe_whose_messages_come_split_and_in_bursts() -> None:
    # The watchdog reads what came every pause, not each message as it comes: a line may arrive in two reads.
    read_end, write_end = os.pipe()
    messages = [json.dumps({"add": str(i), "action": {"kind": "pgid", "pgid": i}}) + "\n" for i in range(200)]
    messages += [json.dumps({"del": str(i)}) + "\n" for i in range(0, 200, 2)]
    data = "".join(messages).encode()

    def write() -> None:
        with os.fdopen(write_end, "wb", buffering=0) as pipe:
            for start in range(0, len(data), 777):  # cuts lines anywhere
                pipe.write(data[start : start + 777])
                time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    with os.fdopen(read_end, "rb") as stream:
        pending = watch(stream, pause=0.01)
    writer.join()
    assert sorted(pending, key=int) == [str(i) for i in range(1, 200, 2)]


def test_a_killed_worker_takes_its_process_group_along() -> None:
    worker, action = start_worker({"kind": "pgid"})
    assert not gone(action["pgid"])
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    poll_until(lambda: gone(action["pgid"]), 30, "the task's process group killed by the reaper")


def test_a_killed_worker_leaves_no_container(docker_client: Any, tmp_path: Path) -> None:
    scope, task = f"reaper-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    labels = {LABEL_SCOPE: scope, LABEL_TASK: task}
    container = docker_client.containers.run(TEST_IMAGE, ["sleep", "300"], labels=labels, detach=True)
    volume = docker_client.volumes.create(labels=labels)
    workspace = tmp_path / "workspace"
    (workspace / "main").mkdir(parents=True)
    try:
        worker, _ = start_worker({"kind": "docker", "labels": labels, "workspace": str(workspace)})
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        label = f"{LABEL_SCOPE}={scope}"
        containers = docker_client.containers.list
        poll_until(lambda: not containers(all=True, filters={"label": label}, ignore_removed=True), 30, "containers")
        poll_until(lambda: not docker_client.volumes.list(filters={"label": label}), 30, "the volume removed")
        poll_until(lambda: not workspace.exists(), 30, "the workspace removed")
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"id": container.id}, ignore_removed=True):
            leftover.remove(force=True)
        for leftover in docker_client.volumes.list(filters={"name": volume.name}):
            leftover.remove(force=True)


def test_a_killed_workers_reaper_spares_a_later_run_of_the_same_task(docker_client: Any) -> None:
    # A coordinator restart redelivers a running task under its own id: the new run's container may start while
    # the dead worker's reaper is still at work (it looks twice, SECOND_PASS_SECONDS apart). Only the dead run's
    # attempt is removed.
    task = RunRequest(uuid.uuid4().hex, "job", Step("main"), scope=f"reaper-{uuid.uuid4().hex[:8]}")
    lost, redelivered = (replace(task, attempt=uuid.uuid4().hex) for _ in range(2))
    assert lost.run_labels()[LABEL_ATTEMPT] != redelivered.run_labels()[LABEL_ATTEMPT]
    old = docker_client.containers.run(TEST_IMAGE, ["sleep", "300"], labels=lost.labels(), detach=True)
    new = docker_client.containers.run(TEST_IMAGE, ["sleep", "300"], labels=redelivered.labels(), detach=True)
    try:
        worker, action = start_worker({"kind": "docker", "labels": lost.run_labels()})
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        label = {"label": f"{LABEL_ATTEMPT}={lost.attempt}"}
        containers = docker_client.containers.list
        poll_until(lambda: not containers(all=True, filters=label, ignore_removed=True), 30, "the lost run's container")
        poll_until(lambda: gone(action["reaper_pid"]), 30, "the reaper's second pass done")
        new.reload()
        assert new.status == "running"
    finally:
        for container in (old, new):
            for leftover in docker_client.containers.list(all=True, filters={"id": container.id}, ignore_removed=True):
                leftover.remove(force=True)
