"""What a user reads when Ray lost a task: the cause in plain words, not a pointer to Ray's log files."""

from __future__ import annotations

from ray.exceptions import NodeDiedError, OutOfMemoryError, RayError, WorkerCrashedError

from tork_ray.coordinator.dispatch import lost_error


def test_a_dead_worker_node_or_memory_is_said_plainly() -> None:
    assert lost_error(WorkerCrashedError()) == (
        "task lost: the worker process running the task died (killed, or crashed) (WorkerCrashedError)"
    )
    assert lost_error(NodeDiedError("node 1 died")) == (
        "task lost: the node running the task died or left the cluster (NodeDiedError)"
    )
    assert "ran out of memory" in lost_error(OutOfMemoryError("Task was killed due to the node running low"))


def test_other_ray_errors_keep_their_kind_and_first_line() -> None:
    assert lost_error(RayError("first line\nsecond")) == "task lost: RayError: first line"
    assert lost_error(RayError()) == "task lost: RayError: "


def test_a_dead_executor_is_said_plainly() -> None:
    from ray.exceptions import ActorDiedError

    assert lost_error(ActorDiedError()) == (
        "task lost: the executor process running the task died (killed, or crashed) (ActorDiedError)"
    )
