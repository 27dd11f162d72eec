"""Web middleware and route toggles, configured through settings, on a second API over the session engine."""

from __future__ import annotations

import dataclasses
import http.client
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.engine import LiveEngine
from tests.polling import poll_until
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.settings import CorsSettings, RateLimitSettings, RequestLogSettings
from tork_ray.store.store import Store

ORIGIN = "http://ui.example"


@pytest.fixture(scope="module")
def base_url(live_engine: LiveEngine) -> Iterator[str]:
    api = dataclasses.replace(
        live_engine.settings.api,
        body_limit="1K",
        cors=CorsSettings(enabled=True, origins=(ORIGIN,), methods=("GET", "POST"), headers=("*",)),
        rate_limit=RateLimitSettings(enabled=True, rps=5),
        request_log=RequestLogSettings(enabled=True, level="INFO", skip=("GET /health", "GET /queues*")),
        disabled_endpoints=("users", "ui"),
    )
    app = create_app(dataclasses.replace(live_engine.settings, api=api), live_engine.coordinator, live_engine.store)
    # 0.0.0.0: the rate-limit tests reach it from several loopback addresses.
    with serve_in_thread(app, host="0.0.0.0") as url:
        yield url


_next_ip = iter(range(2, 250))


@pytest.fixture
def configured(base_url: str) -> Iterator[httpx.Client]:
    """A client with a loopback source address of its own: the rate limit keeps a bucket per client IP, so
    each test starts with a full one."""
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{next(_next_ip)}")
    with httpx.Client(base_url=base_url, timeout=30, transport=transport) as http:
        yield http


def test_body_limit_applies_to_every_route(configured: httpx.Client) -> None:
    big = b"name: x\n" + b"#" * 2048
    r = configured.post("/jobs", content=big, headers={"Content-Type": "text/yaml"})
    assert (r.status_code, r.json()) == (413, {"message": "request body is larger than the limit of 1K"})

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b"name: x\n"
        yield b"#" * 2048

    r = configured.post("/jobs", content=chunks(), headers={"Content-Type": "text/yaml"})
    assert r.status_code == 413


def test_cors(configured: httpx.Client) -> None:
    r = configured.get("/health", headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    pre = configured.options("/jobs", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and "POST" in pre.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in configured.get("/health", headers={"Origin": "http://evil"}).headers


def test_rate_limit_per_client(configured: httpx.Client) -> None:
    codes = [configured.get("/health").status_code for _ in range(20)]
    assert codes[:5] == [200] * 5
    assert 429 in codes
    refused = next(r for r in (configured.get("/health") for _ in range(10)) if r.status_code == 429)
    assert refused.json() == {"message": "too many requests"}
    # Another client is not held back by this one's excess.
    with httpx.Client(
        base_url=str(configured.base_url), transport=httpx.HTTPTransport(local_address="127.0.0.250")
    ) as other:
        assert other.get("/health").status_code == 200


def test_request_log_skips_health(configured: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tork_ray.api.requests"):
        configured.get("/health")
        configured.get("/queues")
        configured.get("/jobs", params={"size": 1})
        # The line is logged once the answer has gone out, so it may come just after the client has it.
        poll_until(lambda: any("GET /jobs" in r.getMessage() for r in caplog.records), what="the GET /jobs log line")
    messages = [r.getMessage() for r in caplog.records if r.name == "tork_ray.api.requests"]
    assert any(m.startswith("GET /jobs 200 ") for m in messages), messages
    assert not any("/health" in m or "/queues" in m for m in messages)


def test_disabled_endpoints_are_gone(configured: httpx.Client) -> None:
    r = configured.post("/users", json={"username": "a", "password": "b"})
    assert (r.status_code, r.json()) == (404, {"message": "Not Found"})
    assert "/users" not in configured.get("/openapi.json").json()["paths"]
    assert [configured.get(path).status_code for path in ("/", "/ui/", "/ui/static/ui.css")] == [404] * 3


def _statuses_on_one_connection(url: str, *paths: str) -> list[int | str]:
    """GETs the paths one after the other on a single kept-alive connection (http.client does not reconnect
    by itself); a request the server no longer answers shows as the exception's name."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)  # 10 s: a hang detector only
    statuses: list[int | str] = []
    try:
        for path in paths:
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
            except (ConnectionError, http.client.HTTPException) as exc:
                statuses.append(type(exc).__name__)
    finally:
        connection.close()
    return statuses


def test_an_unexpected_error_keeps_the_connection(live_engine: LiveEngine, tmp_path: Path) -> None:
    """An unexpected error (here a store whose jobs table is gone) is a 500 {"message"} and nothing more: on
    0854dec the server also cut the connection after it, so a client's next request on it failed (reset)."""
    store = Store(f"sqlite:///{tmp_path}/broken.db")
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE jobs"))
    app = create_app(live_engine.settings, live_engine.coordinator, store)
    with serve_in_thread(app) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            r = http.get("/jobs")
            assert (r.status_code, r.json()) == (500, {"message": "internal server error"})
        statuses = _statuses_on_one_connection(url, "/jobs", "/queues/default")
    store.close()
    assert statuses == [500, 200]
