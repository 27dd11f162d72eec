"""Rebuilding the coordinator from the store alone, after a restart of the actor or of the engine."""

from __future__ import annotations

import logging
from functools import partial

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tork_ray.coordinator.dispatch import QUEUE_RESOURCE_PREFIX
from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.events import Pending, StartJob
from tork_ray.domain.states import JOB_TERMINAL, JobState, TaskState
from tork_ray.settings import RuntimeSettings
from tork_ray.worker.housekeeping import remove_orphan_containers

log = logging.getLogger(__name__)

LOST_TASK_ERROR = "task lost: the coordinator restarted while the task was in flight"
STUCK_JOB_ERROR = "job was left running with no task to run (a coordinator error); restart it to carry on"


def queue_nodes() -> list[str]:
    """Ids of the live Ray nodes that serve at least one queue."""
    return [
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive") and any(name.startswith(QUEUE_RESOURCE_PREFIX) for name in node.get("Resources", {}))
    ]


async def clean_nodes(scope: str, runtime: RuntimeSettings) -> int:
    refs = [
        remove_orphan_containers.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
        ).remote(scope, runtime)
        for node_id in queue_nodes()
    ]
    removed = 0
    for ref in refs:
        try:
            removed += await ref
        except ray.exceptions.RayError as exc:
            log.warning("orphan clean-up failed on a node: %s", exc)
    return removed


UNFINISHED = (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING)


def resume_jobs(engine: Engine, job_ids: list[str] | None = None) -> int:
    """Carries on every unfinished job. Tasks that were waiting in a queue are queued again; tasks that were
    running (their Ray tasks died with the old coordinator) are redelivered: run again, at most
    `redeliveries` times, then failed as lost and retried by the job's own retry rules (or fail the job)."""
    writer = engine.writer
    ids = writer.store.job_ids_in_states(UNFINISHED) if job_ids is None else job_ids
    for job_id in ids:
        try:
            engine.run(partial(_resume, engine, job_id), job_id, f"the recovery of job {job_id}")
        except Exception:
            # The job's recovery failed and was rolled back; run() failed the job. If even that did not
            # happen (the store is down), recovery as a whole fails and is tried again later.
            job = writer.job(job_id)
            if job is None or job.state not in JOB_TERMINAL:
                raise
    return len(ids)


def _resume(engine: Engine, job_id: str) -> None:
    writer = engine.writer
    job = writer.job(job_id)
    if job is None or job.state not in UNFINISHED:
        return  # finished meanwhile, as a side effect of an earlier job's recovery (a sub-job)
    if job.state is JobState.PENDING:
        engine.post(StartJob(job))
        return
    active = writer.active_tasks(job.id)
    if not active:  # nothing would ever move it on: left so by a half-stored event of an older version
        engine.fail_job(job, STUCK_JOB_ERROR)
        return
    for task in [writer.task(t.id) for t in active]:
        if task is None or job.state not in (JobState.SCHEDULED, JobState.RUNNING):
            continue
        if task.state is TaskState.PENDING:
            engine.post(Pending(job, task))
        elif task.is_composite:
            # RUNNING until its children come home; they are resumed one by one (an each started a chunk at a
            # time carries its start on first).
            if task.state is TaskState.RUNNING:
                engine.composites.resume_each(job, task)
        elif task.state is TaskState.SCHEDULED:
            engine.requeue(job, task)
        elif task.state is TaskState.RUNNING:
            engine.redeliver(job, task, LOST_TASK_ERROR)
