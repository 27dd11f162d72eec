"""A job's execution as a tree (parallel, each and sub-job children under their parent) and a timeline."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tork_ray.ui.render import parse_time


def _kind(task: dict[str, Any]) -> str:
    for kind in ("parallel", "each", "subjob"):
        if task.get(kind):
            return kind
    return ""


def _span(job: dict[str, Any], tasks: list[dict[str, Any]]) -> tuple[datetime, float]:
    """The timeline's start and length in seconds: from the job's start to its end (or now, while it runs)."""
    starts = [t for t in (parse_time(x.get("startedAt")) for x in [job, *tasks]) if t]
    start = min(starts) if starts else parse_time(job.get("createdAt")) or datetime.now(UTC)
    ends = [t for t in (parse_time(x.get("completedAt") or x.get("failedAt")) for x in [job, *tasks]) if t is not None]
    end = max([*ends, start]) if job.get("state") not in ("PENDING", "SCHEDULED", "RUNNING") else datetime.now(UTC)
    return start, max((end - start).total_seconds(), 0.001)


def _bar(task: dict[str, Any], start: datetime, span: float) -> dict[str, float] | None:
    began = parse_time(task.get("startedAt"))
    if began is None:
        return None
    ended = parse_time(task.get("completedAt") or task.get("failedAt")) or datetime.now(UTC)
    left = max((began - start).total_seconds(), 0.0) / span * 100
    width = max((ended - began).total_seconds(), 0.0) / span * 100
    return {"left": round(min(left, 100.0), 2), "width": round(max(min(width, 100.0 - left), 0.5), 2)}


def task_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's task instances in tree order, each with its depth, kind, the sub-job it made (if any) and its
    bar on the timeline (percentages of the job's span)."""
    tasks: list[dict[str, Any]] = job.get("execution") or []
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    ids = {t["id"] for t in tasks}
    for task in tasks:
        parent = task.get("parentId")
        children[parent if parent in ids else None].append(task)
    start, span = _span(job, tasks)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for task in sorted(children.get(parent, []), key=lambda t: (t.get("position", 0), t.get("createdAt", ""))):
            subjob = task.get("subjob") or {}
            rows.append(
                {
                    "task": task,
                    "depth": depth,
                    "kind": _kind(task),
                    "subjob_id": subjob.get("id") if isinstance(subjob, dict) else None,
                    "bar": _bar(task, start, span),
                }
            )
            walk(task["id"], depth + 1)

    walk(None, 0)
    return rows
