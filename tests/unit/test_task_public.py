"""Task.public: a composite's count of children (Task.completions, beside the spec) shown where Tork shows it."""

from __future__ import annotations

from tork_ray.domain.models import Task
from tork_ray.domain.states import TaskState

CHILDREN = [{"name": "a", "run": "true"}, {"name": "b", "run": "true"}]


def test_a_started_composite_shows_its_count_inside_its_block_only() -> None:
    parallel = Task(job_id="j", position=1, state=TaskState.RUNNING, completions=1)
    parallel.spec = {"name": "p", "parallel": {"tasks": CHILDREN, "completions": 0}}
    assert parallel.public()["parallel"] == {"tasks": CHILDREN, "completions": 1}
    assert "completions" not in parallel.public()
    each = Task(job_id="j", position=1, state=TaskState.COMPLETED, completions=5)
    each.spec = {"each": {"list": "[1,2,3,4,5]", "task": CHILDREN[0], "size": 5, "index": 5, "completions": 0}}
    assert each.public()["each"]["completions"] == 5 and each.public()["each"]["size"] == 5
    assert each.spec["each"]["completions"] == 0  # shown, never written into the spec


def test_a_composite_not_started_and_a_plain_task_show_no_count() -> None:
    pending = Task(job_id="j", position=1, spec={"parallel": {"tasks": CHILDREN}})
    assert pending.public()["parallel"] == {"tasks": CHILDREN}
    plain = Task(job_id="j", position=1, spec={"name": "t", "run": "true"})
    assert "completions" not in plain.public()
