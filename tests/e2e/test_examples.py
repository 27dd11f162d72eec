"""Every job file in examples/, submitted over HTTP to the session's engine, checked by its outcome."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from tests.engine import LiveEngine
from tests.integration.gates import GATED, open_gates
from tests.polling import poll_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(engine: LiveEngine, name: str, timeout: float = 90.0) -> dict[str, Any]:
    summary = engine.submit((EXAMPLES / name).read_text())
    assert summary["state"] == "PENDING"
    return engine.wait_for(summary["id"], timeout=timeout)


def by_name(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["name"]: task for task in job["execution"]}


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def our_containers(engine: LiveEngine, docker_client: Any) -> list[Any]:
    label = f"tork_ray.scope={engine.settings.ray.namespace}"
    return docker_client.containers.list(all=True, filters={"label": label}, ignore_removed=True)  # type: ignore[no-any-return]


def test_every_example_has_a_test() -> None:
    tested = {name.removeprefix("test_").replace("_", "-") for name in globals() if name.startswith("test_")}
    for path in EXAMPLES.glob("*.yaml"):
        assert path.stem in tested, f"examples/{path.name} has no test_{path.stem.replace('-', '_')}"


def test_hello(live_engine: LiveEngine) -> None:
    job = run_example(live_engine, "hello.yaml")
    assert job["state"] == "COMPLETED"
    assert job["context"]["tasks"]["task1"] == "hello world"


def test_inputs_and_secrets(live_engine: LiveEngine) -> None:
    job = run_example(live_engine, "inputs-and-secrets.yaml")
    assert job["state"] == "COMPLETED"
    assert job["context"]["tasks"]["greeting"] == "hello WORLD (token length 12)"
    assert "s3cr3t-t0k3n" not in str(job)
    assert job["secrets"] == {"token": "[REDACTED]"}


def test_defaults(live_engine: LiveEngine) -> None:
    job = run_example(live_engine, "defaults.yaml")
    assert job["state"] == "COMPLETED", job
    first, second = job["execution"]
    assert first["retry"]["limit"] == 2
    assert first["limits"] == {"cpus": "0.5", "memory": "64m"}
    assert (first["timeout"], first["queue"], first["priority"]) == ("30s", "default", 3)
    assert (second["timeout"], second["priority"], second["retry"]["limit"]) == ("1m", 7, 1)
    assert second["limits"] == {"cpus": "0.5", "memory": "64m"}


def test_retry_backoff(live_engine_both: LiveEngine) -> None:
    job = run_example(live_engine_both, "retry-backoff.yaml")
    assert job["state"] == "FAILED"
    attempts = job["execution"]
    assert [t["state"] for t in attempts] == ["FAILED"] * 3
    assert [t.get("retry", {}).get("attempts", 0) for t in attempts] == [0, 1, 2]
    assert len({t["id"] for t in attempts}) == 3
    # Backoff: 1 s before the second attempt, 2 s before the third.
    assert (stamp(attempts[1]["scheduledAt"]) - stamp(attempts[0]["failedAt"])).total_seconds() >= 1.0
    assert (stamp(attempts[2]["scheduledAt"]) - stamp(attempts[1]["failedAt"])).total_seconds() >= 2.0
    assert job["error"].startswith("exit code 1")


def test_timeout(live_engine_both: LiveEngine, docker_client: Any) -> None:
    job = run_example(live_engine_both, "timeout.yaml")
    assert job["state"] == "FAILED"
    assert "deadline exceeded" in job["execution"][0]["error"]
    assert our_containers(live_engine_both, docker_client) == []


def test_if(live_engine: LiveEngine) -> None:
    job = run_example(live_engine, "if.yaml")
    assert job["state"] == "COMPLETED"
    tasks = by_name(job)
    assert tasks["deploy"]["state"] == "SKIPPED"
    assert tasks["notify"]["state"] == "COMPLETED"
    assert job["context"]["tasks"] == {"notified": "notified"}


def test_pre_post(live_engine: LiveEngine) -> None:
    job = run_example(live_engine, "pre-post.yaml")
    assert job["state"] == "COMPLETED"
    task = job["execution"][0]
    assert task["result"] == "main ran"
    log = live_engine.http.get(f"/tasks/{task['id']}/log", params={"size": 100}).json()
    text = "".join(part["contents"] for part in reversed(log["items"]))
    assert text.index("preparing") < text.index("cleaning up")


def test_parallel(live_engine_both: LiveEngine) -> None:
    job = run_example(live_engine_both, "parallel.yaml")
    assert job["state"] == "COMPLETED", job
    tasks = by_name(job)
    parent = tasks["fan out"]
    assert parent["parallel"]["completions"] == 2
    assert tasks["left"]["parentId"] == parent["id"] == tasks["right"]["parentId"]
    assert tasks["left"]["position"] == tasks["right"]["position"] == 1
    assert job["context"]["tasks"]["joined"] == "LR"


def test_each(live_engine_both: LiveEngine) -> None:
    job = run_example(live_engine_both, "each.yaml")
    assert job["state"] == "COMPLETED", job
    tasks = by_name(job)
    parent = tasks["square"]
    assert parent["each"]["size"] == 5 and parent["each"]["completions"] == 5
    results = {name: task["result"] for name, task in tasks.items() if name.startswith("square ")}
    assert results == {f"square {n}": str(n * n) for n in range(1, 6)}
    # concurrency 2: never more than two children running at once.
    children = [t for t in job["execution"] if t.get("parentId") == parent["id"]]
    spans = [(stamp(t["startedAt"]), stamp(t["completedAt"])) for t in children]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_each_json(live_engine: LiveEngine) -> None:
    job = run_example(live_engine, "each-json.yaml")
    assert job["state"] == "COMPLETED", job
    assert job["context"]["tasks"]["fruit0"] == "apple is red"
    assert job["context"]["tasks"]["fruit1"] == "lime is green"


def test_subjob(live_engine_both: LiveEngine) -> None:
    job = run_example(live_engine_both, "subjob.yaml")
    assert job["state"] == "COMPLETED", job
    tasks = by_name(job)
    attached, detached = tasks["attached"], tasks["detached"]
    assert attached["result"] == "hello tork"
    assert job["context"]["tasks"]["child"] == "hello tork"
    child = live_engine_both.http.get(f"/jobs/{attached['subjob']['id']}").json()
    assert child["state"] == "COMPLETED" and child["parentId"] == attached["id"]
    lone = live_engine_both.wait_for(detached["subjob"]["id"])
    assert lone["state"] == "COMPLETED" and "parentId" not in lone


def test_output(live_engine_both: LiveEngine) -> None:
    job = run_example(live_engine_both, "output.yaml")
    assert job["state"] == "COMPLETED"
    assert job["result"] == "42 apples"


def test_long_job(live_engine: LiveEngine, docker_client: Any) -> None:
    summary = live_engine.submit((EXAMPLES / "long-job.yaml").read_text())
    live_engine.wait_for(summary["id"], "RUNNING")
    response = live_engine.http.put(f"/jobs/{summary['id']}/cancel")
    assert response.status_code == 200 and response.json() == {"status": "OK"}
    job = live_engine.wait_for(summary["id"], "CANCELLED")
    assert job["execution"][0]["state"] == "CANCELLED"
    poll_until(lambda: our_containers(live_engine, docker_client) == [], 30, "the cancelled container is removed")


def test_progress(live_engine: LiveEngine, docker_client: Any) -> None:
    # The example with its `sleep 3` made a gate: the task stays at 50% until the test has seen it there.
    document = (EXAMPLES / "progress.yaml").read_text()
    assert "sleep 3" in document
    summary = live_engine.submit(document.replace("sleep 3", GATED))
    poll_until(
        lambda: live_engine.http.get(f"/jobs/{summary['id']}").json().get("progress") == 25.0,
        60,
        "job progress reaches 25 (task 1 of 2 at 50%)",
    )
    poll_until(lambda: open_gates(docker_client, summary["id"]), 30, "the halfway task's gate opened")
    job = live_engine.wait_for(summary["id"])
    assert job["state"] == "COMPLETED" and job["progress"] == 100
