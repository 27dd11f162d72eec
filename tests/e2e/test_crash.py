"""A crash of the whole engine (SIGKILL) and a start on the same data: queued tasks run, running ones rerun."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import EngineProcess
from tests.polling import poll_until

QUEUED_JOBS = 40


def test_every_job_completes_after_the_engine_is_killed_and_started_again(tmp_path: Path, docker_client: Any) -> None:
    engine = EngineProcess(tmp_path / "data", f"tork_crash_{uuid.uuid4().hex[:8]}", env={"TORK_RUNTIME_TYPE": "shell"})
    engine.data_dir.mkdir()
    release = tmp_path / "release"
    # Two holders take both slots of the default queue until the test releases them (a file, not a timer),
    # so every other task is surely still waiting in the queue when the engine dies.
    hold = f"while [ ! -e {release} ]; do sleep 0.05; done; echo -n held > $TORK_OUTPUT"
    short = [{"name": "one", "run": "echo -n one > $TORK_OUTPUT"}, {"name": "two", "run": "true"}]
    engine.start()
    try:
        with engine.http() as http:
            holders = [_submit(http, {"name": f"holder {i}", "tasks": [{"name": "hold", "run": hold}]}) for i in (1, 2)]
            queued = [_submit(http, {"name": f"short {i}", "tasks": short}) for i in range(QUEUED_JOBS)]
            poll_until(lambda: all(_states(http, job) == ["RUNNING"] for job in holders), 60, "both holders running")
        engine.kill()

        began = time.monotonic()
        engine.start()
        release.touch()
        with engine.http() as http:
            jobs = poll_until(lambda: _all_finished(http, holders + queued), 180, "every job to finish")
        print(f"{len(jobs)} jobs finished {time.monotonic() - began:.1f}s after the restart began")
    finally:
        release.touch()
        if engine.process is not None and engine.process.poll() is None:
            engine.stop()
    assert {job["id"]: job["state"] for job in jobs} == {job["id"]: "COMPLETED" for job in jobs}
    for job in jobs[:2]:  # running when the engine died: redelivered once, the same task record
        assert [(t["state"], t.get("redelivered"), t.get("result")) for t in job["execution"]] == [
            ("COMPLETED", 1, "held")
        ]
    for job in jobs[2:]:  # waiting in the queue: simply run, once
        assert [(t["state"], t.get("redelivered")) for t in job["execution"]] == [("COMPLETED", None)] * 2


def _submit(http: Any, document: dict[str, Any]) -> str:
    response = http.post("/jobs", json=document)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _states(http: Any, job_id: str) -> list[str]:
    return [task["state"] for task in http.get(f"/jobs/{job_id}").json()["execution"]]


def _all_finished(http: Any, job_ids: list[str]) -> list[dict[str, Any]] | None:
    jobs = [http.get(f"/jobs/{job_id}").json() for job_id in job_ids]
    return jobs if all(job["state"] in ("COMPLETED", "FAILED", "CANCELLED") for job in jobs) else None
