"""Hostile templates over HTTP (issue 9, point 2): the engine refuses or fails them and keeps answering meanwhile.

Before the fix, a task whose env held 8,000 x `{{` kept the coordinator busy for seconds (the template scan was
quadratic) and `GET /health` waited as long; 32,000 x `{{`, still under limits.string.length, took minutes.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.health_watch import watching_health
from tests.polling import poll_until

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
BRACES = "{{" * 32_000  # 64,000 characters: plain text by Tork's rule (no `}}`), so delivered verbatim


def _task(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, "run": "true", **fields}


def _jobs() -> dict[str, dict[str, Any]]:
    """Each abusive job by name; all but `braces` must fail with an error naming what they hit."""
    count = _task("count", run='printf %s "${#V}" > "$TORK_OUTPUT"', var="count", env={"V": BRACES})
    return {
        "braces": {"name": "braces", "tasks": [count]},
        "repeat": {"name": "repeat", "tasks": [_task("t", env={"X": "{{ 'a' * 10 ** 9 }}"})]},
        "power": {"name": "power", "tasks": [_task("t", env={"X": "{{ 10 ** (10 ** 10) }}"})]},
        "sequence": {
            "name": "sequence",
            "tasks": [{"name": "each", "each": {"list": "{{ sequence(0, 10 ** 12) }}", "task": _task("never")}}],
        },
        "steps": {
            "name": "steps",
            "tasks": [_task("t", env={"X": "{{ sequence(0, 100000)" + " | map('string')" * 20 + " | list }}"})],
        },
        "output": {
            "name": "output",
            "tasks": [_task("t")],
            "output": "{{ sequence(0, 100000) | select('in', sequence(0, 100000)) | list }}",
        },
        "braces in a segment": {"name": "segment", "tasks": [_task("t", env={"X": "{{" * 20_000 + " x }}"})]},
    }


EXPECTED_ERRORS = {
    "repeat": "more than limits.template.output",
    "power": "more than 4096 bits",
    "sequence": "more than limits.each.items (100000)",
    "steps": "steps of work in one request",
    "output": "characters in all (10 x limits.template.output)",
    "braces in a segment": "error compiling expression",
}


def _submit(engine: LiveEngine, doc: dict[str, Any]) -> str | None:
    """The job id, or None when the submit was refused with a 400 (also an acceptable answer)."""
    response = engine.http.post("/jobs", json=doc)
    if response.status_code == 400:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _errors(job: dict[str, Any]) -> str:
    return " | ".join(str(e) for e in [job.get("error"), *(t.get("error") for t in job.get("execution", []))] if e)


def test_abusive_templates_fail_clearly_while_health_keeps_answering(live_engine: LiveEngine) -> None:
    with watching_health(str(live_engine.http.base_url), pause=0.05) as watch:
        ids = {name: _submit(live_engine, doc) for name, doc in _jobs().items()}
        jobs: dict[str, dict[str, Any]] = {}
        for name, job_id in ids.items():
            if job_id is None:
                continue

            def finished(job_id: str = job_id) -> dict[str, Any] | None:
                job = live_engine.http.get(f"/jobs/{job_id}").json()
                return job if job.get("state") in TERMINAL else None

            jobs[name] = poll_until(finished, timeout=120, what=f"job {name!r} to finish")
    print(f"\nwhile the abusive jobs ran: {watch.summary()}")
    watch.assert_answered()

    braces = jobs["braces"]
    assert braces["state"] == "COMPLETED", _errors(braces)
    assert braces["context"]["tasks"]["count"] == str(len(BRACES))
    for name, fragment in EXPECTED_ERRORS.items():
        if name in jobs:
            assert jobs[name]["state"] == "FAILED", (name, jobs[name]["state"])
            assert fragment in _errors(jobs[name]), (name, _errors(jobs[name]))
