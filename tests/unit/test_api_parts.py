"""Pure parts of the API: paging, search terms, Prometheus text, rate limiting, passwords, settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tork_ray.api.middleware.ratelimit import RateLimit
from tork_ray.api.middleware.requestlog import RequestLog
from tork_ray.api.paging import page_params
from tork_ray.api.passwords import hash_password, verify_password
from tork_ray.api.prometheus import render
from tork_ray.api.views import page_body
from tork_ray.coordinator.dispatch import QueueInfo
from tork_ray.coordinator.nodes import MetricsSnapshot, NodeInfo
from tork_ray.errors import BadRequest
from tork_ray.settings import load_settings
from tork_ray.store.search import parse_query
from tork_ray.store.stats import TransitionCounters


def test_paging_defaults_clamps_and_errors() -> None:
    assert page_params(None, None, 10, 20) == (1, 10)
    assert page_params("0", "0", 10, 20) == (1, 1)
    assert page_params("-3", "500", 25, 100) == (1, 100)
    with pytest.raises(BadRequest, match="invalid page number: x"):
        page_params("x", None, 10, 20)
    with pytest.raises(BadRequest, match=r"invalid size: 1\.5"):
        page_params(None, "1.5", 10, 20)


def test_page_shape_counts_pages_of_the_requested_size() -> None:
    assert page_body(["a"], 3, 2, 5) == {"items": ["a"], "number": 3, "size": 1, "totalPages": 3, "totalItems": 5}
    assert page_body([], 9, 10, 0)["totalPages"] == 0


def test_query_terms() -> None:
    query = parse_query("The Nightly tag:red tags:blue,green builds! tag: ")
    assert query.words == ("nightly", "builds")
    assert query.tags == ("red", "blue", "green")
    assert parse_query(None).words == () and parse_query("a the").words == ()
    assert parse_query('"quoted" OR x*').words == ("quoted", "x")  # no FTS operator gets through


def test_rate_limit_refills_per_client() -> None:
    now = [0.0]
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["client"][0])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    limiter = RateLimit(app, rps=2, clock=lambda: now[0])

    def hit(ip: str) -> None:
        scope = {"type": "http", "client": (ip, 1), "method": "GET", "path": "/", "headers": []}
        asyncio.run(limiter(scope, receive, send))

    for _ in range(3):
        hit("1.1.1.1")
    hit("2.2.2.2")
    assert calls == ["1.1.1.1", "1.1.1.1", "2.2.2.2"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [429]
    now[0] = 0.5  # one token back
    hit("1.1.1.1")
    assert calls[-1] == "1.1.1.1"


def test_request_log_skip_patterns() -> None:
    log = RequestLog(app=None, skip=("GET /health", "* /metrics*"))  # type: ignore[arg-type]
    assert log.skipped("GET", "/health") and log.skipped("get", "/health")
    assert log.skipped("GET", "/metrics/prometheus")
    assert not log.skipped("POST", "/health") and not log.skipped("GET", "/jobs")


def test_passwords_are_salted_slow_hashes() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", first) and not verify_password("other", first)
    assert not verify_password("s3cret", "") and not verify_password("s3cret", "bcrypt$x")


def test_prometheus_text() -> None:
    counters = TransitionCounters()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    counters.task_changed("RUNNING", "COMPLETED", start, start.replace(second=3))
    counters.task_changed("PENDING", "SKIPPED", None, None)
    counters.job_changed("RUNNING", "FAILED")
    node = NodeInfo("n1", 'we"ird', "host", 1, "UP", {"default": 2}, 1, "0.1.0", cpu_percent=12.5)
    snapshot = MetricsSnapshot(2, 1, [node], [QueueInfo("default", 3, 2, 1)], counters.snapshot(), {"channel": 4})
    text = render(snapshot, {"jobs": {"FAILED": 1}, "tasks": {"COMPLETED": 1, "SKIPPED": 1}}, 12.5)
    lines = set(text.splitlines())
    assert "tork_jobs_running 2" in lines and "tork_nodes_online 1" in lines
    assert 'tork_node_cpu_percent{node="we\\"ird"} 12.5' in lines
    assert 'tork_queue_size{queue="default"} 3' in lines
    assert 'tork_tasks_finished_total{state="SKIPPED"} 1' in lines
    assert 'tork_task_duration_seconds_bucket{le="2.5"} 0' in lines
    assert 'tork_task_duration_seconds_bucket{le="5"} 1' in lines
    assert "tork_task_duration_seconds_count 1" in lines and "tork_task_duration_seconds_sum 3" in lines
    assert 'tork_executor_reports_total{via="channel"} 4' in lines
    assert 'tork_executor_reports_total{via="ray"} 0' in lines
    assert text.endswith("\n")


def test_api_settings_from_env() -> None:
    settings = load_settings(
        {
            "TORK_MIDDLEWARE_WEB_CORS_ENABLED": "true",
            "TORK_MIDDLEWARE_WEB_CORS_ORIGINS": "http://a,http://b",
            "TORK_MIDDLEWARE_WEB_RATELIMIT_ENABLED": "1",
            "TORK_MIDDLEWARE_WEB_RATELIMIT_RPS": "7",
            "TORK_MIDDLEWARE_WEB_BODYLIMIT": "1M",
            "TORK_MIDDLEWARE_WEB_LOGGER_SKIP": "GET /health,GET /metrics*",
            "TORK_COORDINATOR_API_ENDPOINTS_USERS": "false",
            "TORK_COORDINATOR_ADDRESS": "0.0.0.0:9000",
            "TORK_CONFIG": "",
        }
    )
    api = settings.api
    assert (api.host, api.port, api.body_limit) == ("0.0.0.0", 9000, "1M")
    assert api.cors.enabled and api.cors.origins == ("http://a", "http://b")
    assert api.rate_limit.enabled and api.rate_limit.rps == 7
    assert api.request_log.skip == ("GET /health", "GET /metrics*")
    assert api.disabled_endpoints == ("users",)
    default = load_settings({"TORK_CONFIG": ""}).api
    assert not default.cors.enabled and not default.rate_limit.enabled and default.request_log.enabled
