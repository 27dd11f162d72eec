"""Long runs of events handled from a work queue, not by recursion: thousands of skipped tasks in one go."""

from __future__ import annotations

import time
import uuid

from tests.conftest import TEST_IMAGE
from tests.engine import LiveEngine
from tests.health_watch import watching_health
from tork_ray.store.store import Store

MANY = 10_000


def test_ten_thousand_skipped_top_level_tasks_then_a_real_one(live_engine: LiveEngine) -> None:
    # Compact on purpose: 10,000 definitions stay under the API's body limit.
    skipped = [{"name": "s", "if": "false"} for _ in range(MANY - 1)]
    real = {"name": "real", "image": TEST_IMAGE, "run": "echo -n done > $TORK_OUTPUT", "var": "real"}
    began = time.monotonic()
    with watching_health(str(live_engine.http.base_url)) as health:
        job = live_engine.submit_json({"name": "mostly skipped", "tasks": [*skipped, real]})
        done = live_engine.wait_for(job["id"], timeout=300)
    print(f"{MANY} top-level tasks (all but one skipped) in {time.monotonic() - began:.1f}s; {health.summary()}")
    health.assert_answered()  # the coordinator's loop is given back between chunks: readiness answers
    assert done["state"] == "COMPLETED", done.get("error")
    assert done["context"]["tasks"]["real"] == "done"
    states = [task["state"] for task in done["execution"]]
    assert states.count("SKIPPED") == MANY - 1 and states[-1] == "COMPLETED"


def test_an_each_of_ten_thousand_skipped_items_one_at_a_time(live_engine: LiveEngine) -> None:
    each = {
        "list": f"{{{{ sequence(0, {MANY}) }}}}",
        "concurrency": 1,
        "task": {"name": "item", "if": "false", "image": TEST_IMAGE, "run": "exit 1"},
    }
    after = {"name": "after", "image": TEST_IMAGE, "run": "echo -n after > $TORK_OUTPUT", "var": "after"}
    began = time.monotonic()
    job = live_engine.submit_json({"name": "each skipped", "tasks": [{"name": "items", "each": each}, after]})
    done = live_engine.wait_for(job["id"], timeout=300)
    print(f"an each of {MANY} skipped items, concurrency 1, in {time.monotonic() - began:.1f}s")
    assert done["state"] == "COMPLETED", done.get("error")
    assert done["context"]["tasks"]["after"] == "after"
    parent = next(task for task in done["execution"] if task["name"] == "items")
    assert parent["state"] == "COMPLETED" and parent["each"]["completions"] == MANY


def test_an_event_the_store_refuses_fails_its_job_instead_of_leaving_it_running(live_engine: LiveEngine) -> None:
    # A real fault in the real database, half-way through an event: the first task's result is stored with
    # the next task's creation, and SQLite refuses that task. Before, half the event stayed in memory, the
    # error vanished in a background task and the job stayed RUNNING for ever.
    name = f"refused_{uuid.uuid4().hex[:8]}"
    refuse_second_task_of(live_engine.store, name)
    try:
        first = {"name": "first", "image": TEST_IMAGE, "run": "echo -n one > $TORK_OUTPUT", "var": "first"}
        job = live_engine.submit_json({"name": name, "tasks": [first, {"name": "second", "if": "false"}]})
        done = live_engine.wait_for(job["id"], timeout=60)
    finally:
        with live_engine.store.engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TRIGGER refuse_{name}")
    assert done["state"] == "FAILED"
    assert done["error"].startswith("coordinator error while handling the result of task")
    assert "refused by a test trigger" in done["error"]
    # Nothing of the failed event was stored: no second task, no `first` result in the job's context.
    assert [task["name"] for task in done["execution"]] == ["first"]
    assert "first" not in done["context"].get("tasks", {})
    # The engine carries on with other jobs.
    after = live_engine.submit_json({"name": "after", "tasks": [{"name": "ok", "if": "false"}]})
    assert live_engine.wait_for(after["id"])["state"] == "COMPLETED"


def refuse_second_task_of(store: Store, job_name: str) -> None:
    """A real fault in the real database: SQLite aborts the insert of the second task of the job so named.
    (Keyed on the job's name: a task's own name is encrypted at rest, the session engine has a key.)"""
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TRIGGER refuse_{job_name} BEFORE INSERT ON tasks WHEN NEW.position = 2 AND NEW.job_id IN "
            f"(SELECT id FROM jobs WHERE name = '{job_name}') "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
        )
