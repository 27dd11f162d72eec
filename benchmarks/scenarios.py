"""Every scenario of `python -m benchmarks`, registered with its arguments and rows (see registry.py)."""

from __future__ import annotations

from typing import Any

from benchmarks.registry import Goal, Row, Scenario, register


def _shell_rows(report: dict[str, Any]) -> list[Row]:
    return (
        _shell_engine_rows(report, "shell tasks, executor per node (the default)", "tork_ray_node")
        + _shell_engine_rows(report, "shell tasks, a Ray task per task", "tork_ray")
        + _design_rows(report)
    )


def _shell_engine_rows(report: dict[str, Any], name: str, side: str) -> list[Row]:
    seq, fan = report["results"]
    return [
        Row(name, f"sequential: ms per task ({seq['tasks']} in one job)", "ms", seq["per_task_ms"][side],
            "raw Ray tasks", seq["per_task_ms"]["ray"]),
        Row(name, "sequential: ms added per task over raw subprocesses", "ms", seq["added_per_task_ms"][side],
            "raw Ray tasks", seq["added_per_task_ms"]["ray"], (Goal("<=", 4.0, on_value=True),)),
        Row(name, f"fan-out: tasks/s (a parallel of {fan['tasks']}, 2 slots)", "tasks/s",
            fan["tasks_per_second"][side], "raw Ray tasks", fan["tasks_per_second"]["ray"],
            (Goal(">=", 500, on_value=True), Goal(">=", 0.87)), "throughput"),
        Row(name, "fan-out: tasks/s against raw subprocesses on 2 threads", "tasks/s",
            fan["tasks_per_second"][side], "raw subprocesses", fan["tasks_per_second"]["subprocess"],
            kind="throughput"),
    ]  # fmt: skip


def _design_rows(report: dict[str, Any]) -> list[Row]:
    seq, fan = report["results"]
    name = "shell tasks"
    return [
        # The executor design, raw, without the engine: what it leaves to the engine's own work.
        Row(name, "executor per node, raw: sequential ms per call", "ms", seq["per_task_ms"]["ray_actor"],
            "raw Ray tasks", seq["per_task_ms"]["ray"]),
        Row(name, "executor per node, raw: fan-out tasks/s, a call per task", "tasks/s",
            fan["tasks_per_second"]["ray_actor"], "raw Ray tasks", fan["tasks_per_second"]["ray"], kind="throughput"),
        Row(name, "executor per node, raw: fan-out tasks/s, batches of 20", "tasks/s",
            fan["tasks_per_second"]["ray_actor_batched"], "raw Ray tasks", fan["tasks_per_second"]["ray"],
            kind="throughput"),
    ]  # fmt: skip


def _docker_rows(report: dict[str, Any]) -> list[Row]:
    rows = []
    for result in report["results"]:
        if result["name"] == "sequential":
            rows.append(
                Row(
                    "container tasks",
                    f"sequential: s for {result['containers']} tasks",
                    "s",
                    result["tork_ray_median"],
                    "raw Docker SDK",
                    result["raw_median"],
                    (Goal("<=", 1.10),),
                )
            )
        else:
            rows.append(Row("container tasks", f"fan-out: tasks/s ({result['containers']} items)", "tasks/s",
                            result["tork_ray_per_second"], "raw Docker SDK threads", result["raw_per_second"],
                            (Goal(">=", 0.90),), "throughput"))  # fmt: skip
    return rows


def _coordinator_rows(report: dict[str, Any]) -> list[Row]:
    return [
        Row("coordinator alone", "durable task state changes/s (no-op runtime)", "changes/s",
            report["engine_state_changes_per_second"], "SQLite single-row commits", report["store_commits_per_second"],
            (Goal(">=", 2000, on_value=True),), "throughput"),
    ]  # fmt: skip


def _memory_rows(report: dict[str, Any]) -> list[Row]:
    engine, bare = report["engine"], report["bare ray.init"]
    rows = [
        Row("cold start and memory", "RSS of make run's process tree, idle", "MiB", engine["rss_mib"],
            "bare ray.init", bare["rss_mib"], (Goal("<=", 1024, on_value=True),)),
        Row("cold start and memory", "cold start to a healthy API", "s", engine["cold_start_seconds"],
            "bare ray.init", bare["cold_start_seconds"], (Goal("<=", 10, on_value=True),)),
    ]  # fmt: skip
    if tasks := report.get("engine, a Ray task per task"):
        rows.append(Row("cold start and memory", "the same with worker.executor = task: RSS, idle", "MiB",
                        tasks["rss_mib"], "bare ray.init", bare["rss_mib"],
                        (Goal("<=", 1024, on_value=True),)))  # fmt: skip
    return rows


def _api_rows(report: dict[str, Any]) -> list[Row]:
    figures = report["figures"]
    health = figures["health"]
    worst = max((v for k, v in figures.items() if k.startswith("search")), key=lambda v: v["p95_ms"])
    jobs = report["jobs_in_store"]
    return [
        Row("API", f"submit p50 ({jobs} jobs stored)", "ms", figures["submit"]["p50_ms"], "GET /health p50",
            health["p50_ms"], (Goal("<=", 5, on_value=True),)),
        Row("API", f"search p95, worst word ({jobs} jobs stored)", "ms", worst["p95_ms"], "GET /health p95",
            health["p95_ms"], (Goal("<=", 50, on_value=True),)),
    ]  # fmt: skip


def _env_wrap_rows(report: dict[str, Any]) -> list[Row]:
    rows = []
    for engine in ("docker", "podman"):
        figures = report[engine]
        rows.append(Row("env wrapping", f"{engine}: a step with env, median", "ms", figures["wrapped"]["median_ms"],
                        "the same step without env", figures["plain"]["median_ms"]))  # fmt: skip
    return rows


def _webhooks_rows(report: dict[str, Any]) -> list[Row]:
    return [
        Row("webhooks", "a job's life with 2 webhooks (6 calls)", "ms", report["job_life_ms_with_2_webhooks_6_calls"],
            "the same without webhooks", report["job_life_ms_without"]),
        Row("webhooks", "sender: calls/s", "calls/s", report["sender_calls_per_s"], "bare httpx POSTs",
            report["raw_httpx_posts_per_s"], kind="throughput"),
    ]  # fmt: skip


register(Scenario(
    "shell", "benchmarks.shell_bench", (), ("--tasks", "20", "--fanout", "40", "--rounds", "1"), "shell_bench.json",
    _shell_rows, "trivial shell tasks, a Ray task per task and an executor per node, against raw subprocesses and "
    "raw Ray tasks", quick_seconds=45,
))  # fmt: skip
register(Scenario(
    "coordinator", "benchmarks.coordinator_bench", (), ("--tasks", "200", "--rounds", "1"), "coordinator_bench.json",
    _coordinator_rows, "the coordinator alone, no-op runtime, against SQLite commits", quick_seconds=4,
))  # fmt: skip
register(Scenario(
    "docker", "benchmarks.docker_bench", (), ("--tasks", "3", "--fanout", "4", "--slots", "2", "--rounds", "1"),
    "docker_bench.json", _docker_rows, "container tasks against the raw Docker SDK", quick_seconds=42,
))  # fmt: skip
register(Scenario(
    "memory", "benchmarks.memory_bench", ("--task",), ("--idle", "2"), "memory_bench.json", _memory_rows,
    "cold start and idle memory of make run against a bare ray.init", quick_seconds=45,
))  # fmt: skip
register(Scenario(
    "api", "benchmarks.api_bench", (), ("--jobs", "2000", "--seconds", "3", "--warmup", "1", "--rate", "40"),
    "api_bench-stdlib.json",
    _api_rows, "submit and search under a steady load, 100,000 jobs stored", quick_seconds=30,
))  # fmt: skip
register(Scenario(
    "env_wrap", "benchmarks.env_wrap", (), ("--tasks", "1", "--loops", "20"), "env_wrap.json", _env_wrap_rows,
    "what hiding a shell-less step's env costs (Docker, Podman)", quick_seconds=25,
))  # fmt: skip


def _log_parts_rows(report: dict[str, Any]) -> list[Row]:
    return [
        Row("log parts", f"a task's first log part, a parallel of {report['children']}: parts/s", "parts/s",
            report["wide_first_parts_per_second"], "the same in a one-task job",
            report["small_first_parts_per_second"], kind="throughput"),
    ]  # fmt: skip


register(Scenario(
    "webhooks", "benchmarks.webhooks_bench", (), ("--jobs", "30", "--rounds", "1"), "webhooks_bench.json",
    _webhooks_rows, "what webhooks cost the coordinator, and the sender's rate", quick_seconds=8,
))  # fmt: skip
register(Scenario(
    "log_parts", "benchmarks.log_parts_bench", (), ("--children", "2000", "--tasks", "50", "--rounds", "1"),
    "log_parts_bench.json", _log_parts_rows, "a task's first log part in a wide parallel against a one-task job",
    quick_seconds=3,
))  # fmt: skip


def _concurrent_jobs_rows(report: dict[str, Any]) -> list[Row]:
    base, cluster = report["standalone-sqlite"], report["cluster-postgres"]
    return [
        Row("concurrent jobs", f"{cluster['jobs']} jobs at once, 2-node cluster on PostgreSQL", "tasks/s",
            cluster["tasks_per_second"], "standalone on SQLite", base["tasks_per_second"], kind="throughput"),
    ]  # fmt: skip


register(Scenario(
    "concurrent_jobs", "benchmarks.cluster_bench", (), ("--jobs", "20"), "cluster_bench.json", _concurrent_jobs_rows,
    "1,000 one-task jobs submitted at once: a two-node local cluster on PostgreSQL against standalone SQLite",
    quick_seconds=41,
))  # fmt: skip


def _sharding_rows(report: dict[str, Any]) -> list[Row]:
    rows = []
    for store, by_k in report["results"].items():
        one = by_k["1"]
        for k, figures in by_k.items():
            if k == "1":
                continue
            rows += [
                Row("coordinator shards", f"{k} shards ({store}): durable task state changes/s, aggregate", "changes/s",
                    figures["state_changes_per_second"], f"1 shard ({store})", one["state_changes_per_second"],
                    kind="throughput"),
                Row("coordinator shards", f"{k} shards ({store}): tasks/s, aggregate", "tasks/s",
                    figures["tasks_per_second"], f"1 shard ({store})", one["tasks_per_second"], kind="throughput"),
            ]  # fmt: skip
    return rows


register(Scenario(
    "sharding", "benchmarks.sharding_bench", (), ("--jobs", "40", "--tasks-per-job", "5", "--rounds", "1"),
    "sharding_bench.json", _sharding_rows,
    "K coordinator shards (processes, each its Engine and SQLite, jobs routed by id) against one, no-op runtime",
    quick_seconds=5,
))  # fmt: skip


def _each_items_rows(report: dict[str, Any]) -> list[Row]:
    each, base = report["each"], report["baseline"]
    what = f"an each of {report['items']} items (window {report.get('window', 'none')})"
    return [
        Row("each items", f"{what}, coordinator alone: peak RSS", "MiB",
            each["rss_peak_mib"], "the same process before it", each["rss_before_mib"]),
        Row("each items", f"{what}, coordinator alone: tasks/s", "tasks/s",
            each["tasks_per_second"], f"a parallel of {base['parallel_tasks']}", base["tasks_per_second"],
            kind="throughput"),
    ]  # fmt: skip


register(Scenario(
    "each_items", "benchmarks.each_items_bench", (), ("--items", "2000", "--baseline-tasks", "200", "--window", "200"),
    "each_items_bench.json", _each_items_rows,
    "an each of 100,000 items, the coordinator alone: time and memory against a parallel of 1,000",
    quick_seconds=5,
))  # fmt: skip
