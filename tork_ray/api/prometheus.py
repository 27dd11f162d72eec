"""The metrics in Prometheus' text exposition format (version 0.0.4), written out by hand: no global registry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tork_ray.coordinator.nodes import MetricsSnapshot
from tork_ray.store.stats import DURATION_BUCKETS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        rendered = ",".join(f'{key}="{_escape(str(v))}"' for key, v in (labels or {}).items())
        self.lines.append(f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}")

    def labelled(self, name: str, kind: str, help_text: str, label: str, values: Iterable[tuple[str, float]]) -> None:
        self.family(name, kind, help_text)
        for key, value in values:
            self.sample(name, value, {label: key})


def render(snapshot: MetricsSnapshot, state_counts: Mapping[str, Mapping[str, int]], cpu: float) -> str:
    w = _Writer()
    up = [node for node in snapshot.nodes if node.status == "UP"]
    for name, value, text in (
        ("tork_jobs_running", snapshot.jobs_running, "Jobs in state RUNNING."),
        ("tork_tasks_running", snapshot.tasks_running, "RUNNING tasks of RUNNING jobs."),
        ("tork_nodes_online", len(up), "Nodes serving queues whose heartbeat is recent (UP)."),
        ("tork_nodes_cpu_percent", cpu, "Average whole-host CPU use of the online nodes."),
    ):
        w.family(name, "gauge", text)
        w.sample(name, value)
    w.labelled(
        "tork_node_cpu_percent",
        "gauge",
        "Whole-host CPU use per node, from its last heartbeat.",
        "node",
        ((node.name, node.cpu_percent or 0.0) for node in up),
    )
    w.labelled(
        "tork_node_tasks_running",
        "gauge",
        "Tasks running per node.",
        "node",
        ((node.name, node.task_count) for node in snapshot.nodes),
    )
    queues: list[Any] = sorted(snapshot.queues, key=lambda q: q.name)
    for field, text in (
        ("size", "waiting in the coordinator's backlog"),
        ("subscribers", "slots across the cluster"),
        ("unacked", "running"),
    ):
        w.labelled(
            f"tork_queue_{field}",
            "gauge",
            f"Tasks of the queue {text}." if field != "subscribers" else "Slots of the queue across the cluster.",
            "queue",
            ((q.name, getattr(q, field)) for q in queues),
        )
    w.labelled("tork_jobs", "gauge", "Jobs in the store by state.", "state", sorted(state_counts["jobs"].items()))
    w.labelled(
        "tork_tasks", "gauge", "Task instances in the store by state.", "state", sorted(state_counts["tasks"].items())
    )
    counters = snapshot.counters
    w.labelled(
        "tork_jobs_finished_total",
        "counter",
        "Jobs that reached a final state since the coordinator started.",
        "state",
        sorted(counters.jobs_finished.items()),
    )
    w.labelled(
        "tork_tasks_finished_total",
        "counter",
        "Tasks that reached a final state since the coordinator started.",
        "state",
        sorted(counters.tasks_finished.items()),
    )
    w.labelled(
        "tork_executor_reports_total",
        "counter",
        "Executors' reports of task outcomes since the coordinator started, by how they came (channel, ray).",
        "via",
        sorted({"channel": 0, "ray": 0, **snapshot.executor_reports}.items()),
    )
    w.family("tork_task_duration_seconds", "histogram", "Run time of tasks that ended (start to end).")
    for bound, count in zip(DURATION_BUCKETS, counters.duration_buckets, strict=True):
        w.sample("tork_task_duration_seconds_bucket", count, {"le": _number(bound)})
    w.sample("tork_task_duration_seconds_bucket", counters.duration_count, {"le": "+Inf"})
    w.sample("tork_task_duration_seconds_sum", counters.duration_sum)
    w.sample("tork_task_duration_seconds_count", counters.duration_count)
    return "\n".join(w.lines) + "\n"
