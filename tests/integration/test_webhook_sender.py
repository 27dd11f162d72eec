"""The webhook sender against a real HTTP receiver and a real SQLite outbox (no Ray needed): retries, giving up,
hostile receivers, bounded concurrency, order, signing, and the allow-list checked at send time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.polling import poll_until
from tests.postgres import fresh_database
from tests.webhook_receiver import Receiver, receiver
from tork_ray.domain.models import new_id, utcnow
from tork_ray.store.store import Store
from tork_ray.store.webhook_outbox import outbox_rows
from tork_ray.store.webhook_tables import DELIVERED, FAILED, OUTBOX, PENDING, WebhookOutboxRow
from tork_ray.webhooks.config import WebhookSettings
from tork_ray.webhooks.sender import WebhookSender
from tork_ray.webhooks.signing import signature

SECRET = "sender-test-signing-secret"
TOKEN = "header-token-4f1c"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The outbox on both stores: the sender's query (each stream's oldest pending call) is plain SQL."""
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'tork.db'}"
        if request.param == "postgres":
            url = stack.enter_context(fresh_database("tork_webhooks"))
        store = Store(url, encryption_key="outbox key")
        yield store
        store.close()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def add_call(store: Store, url: str, stream: str = "s:0", body: str = '{"n":1}', **headers: str) -> None:
    now = utcnow()
    row = {
        "delivery": new_id(),
        "stream": stream,
        "job_id": stream.split(":")[0][:32],
        "event": "job.StateChange",
        "url": url,
        "headers": headers,
        "body": body,
        "state": PENDING,
        "attempts": 0,
        "next_at": now,
        "created_at": now,
    }
    store.save(extra={OUTBOX: [row]})


def settings(**changes: Any) -> WebhookSettings:
    base: dict[str, Any] = {"timeout": "1s", "retry_delay": "50ms", "secret": SECRET}
    return WebhookSettings(**{**base, **changes})


@pytest.fixture
def sender_for(store: Store) -> Iterator[Any]:
    started: list[WebhookSender] = []

    def start(**changes: Any) -> WebhookSender:
        sender = WebhookSender(store, settings(**changes))
        sender.start()
        started.append(sender)
        return sender

    yield start
    for sender in started:
        sender.stop()


def done(store: Store, count: int) -> list[WebhookOutboxRow] | None:
    rows = outbox_rows(store)
    return rows if len(rows) >= count and all(r.state != PENDING for r in rows) else None


def test_a_call_is_posted_signed_with_its_headers(store: Store, hooks: Receiver, sender_for: Any) -> None:
    add_call(store, f"{hooks.url}/hook", body='{"id":"abc","state":"COMPLETED"}', Authorization=f"Bearer {TOKEN}")
    sender_for()
    (row,) = poll_until(lambda: done(store, 1), 10, "the call delivered")
    assert (row.state, row.attempts) == (DELIVERED, 1)
    (got,) = hooks.at("/hook")
    assert got.json() == {"id": "abc", "state": "COMPLETED"}
    assert got.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert got.headers["Authorization"] == f"Bearer {TOKEN}"
    assert got.headers["X-Tork-Delivery"] == row.delivery
    stamp = got.headers["X-Tork-Timestamp"]
    assert abs(int(stamp) - time.time()) < 300
    assert got.headers["X-Tork-Signature"] == signature(SECRET, stamp, got.body)


def test_500_then_200_is_retried(store: Store, hooks: Receiver, sender_for: Any) -> None:
    hooks.plans["/flaky"] = [500, 503, 200]
    add_call(store, f"{hooks.url}/flaky")
    sender_for()
    (row,) = poll_until(lambda: done(store, 1), 10, "the call delivered after retries")
    assert (row.state, row.attempts, len(hooks.at("/flaky"))) == (DELIVERED, 3, 3)


def test_429_and_5xx_are_retried_up_to_the_attempts_then_given_up(
    store: Store, hooks: Receiver, sender_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hooks.plans["/busy"] = [429, 502, 504]
    add_call(store, f"{hooks.url}/busy", Authorization=f"Bearer {TOKEN}")
    with caplog.at_level(logging.WARNING, logger="tork_ray.webhooks.sender"):
        sender_for(attempts=3)
        (row,) = poll_until(lambda: done(store, 1), 10, "the call given up")
    assert (row.state, row.attempts, row.last_error) == (FAILED, 3, "status 504")
    assert len(hooks.at("/busy")) == 3
    assert "gave up after 3 attempt(s): status 504" in caplog.text
    assert TOKEN not in caplog.text and hooks.url not in caplog.text


@pytest.mark.parametrize(("plan", "error"), [([400], "status 400"), ([404], "status 404"), ("redirect", "status 307")])
def test_other_answers_give_up_at_once_and_redirects_are_not_followed(
    store: Store, hooks: Receiver, sender_for: Any, plan: Any, error: str
) -> None:
    hooks.plans["/no"] = plan
    add_call(store, f"{hooks.url}/no")
    sender_for()
    (row,) = poll_until(lambda: done(store, 1), 10, "the call given up")
    assert (row.state, row.attempts, row.last_error) == (FAILED, 1, error)
    assert [r.path for r in hooks.requests] == ["/no"]  # never /redirected


def test_a_dead_receiver_is_retried_as_a_network_error(store: Store, sender_for: Any) -> None:
    with receiver() as gone:
        url = gone.url
    add_call(store, f"{url}/nobody")
    sender_for(attempts=2)
    (row,) = poll_until(lambda: done(store, 1), 10, "the call given up")
    assert (row.state, row.attempts) == (FAILED, 2)
    assert row.last_error is not None and row.last_error.startswith("network error")


def test_a_name_that_does_not_resolve_is_retried_then_given_up(store: Store, sender_for: Any) -> None:
    add_call(store, "http://no-such-host.invalid/hook", stream="a:0")
    sender_for(attempts=2, allow=("10.0.0.0/8",))  # a name not listed: resolved by the sender, which fails
    (row,) = poll_until(lambda: done(store, 1), 30, "the call given up")
    assert (row.state, row.attempts) == (FAILED, 2)
    assert row.last_error in ("resolving the host failed: gaierror", "timed out")


def test_a_hanging_receiver_times_out_and_in_flight_calls_are_bounded(
    store: Store, hooks: Receiver, sender_for: Any
) -> None:
    hooks.plans["/hang"] = "hang"
    for i in range(6):
        add_call(store, f"{hooks.url}/hang", stream=f"s{i}:0")
    add_call(store, f"{hooks.url}/fine", stream="other:0")
    sender = sender_for(timeout="300ms", attempts=1, concurrency=2)
    rows = poll_until(lambda: done(store, 7), 20, "every call settled")
    assert sorted(r.state for r in rows) == [DELIVERED] + [FAILED] * 6
    assert {r.last_error for r in rows if r.state == FAILED} == {"timed out"}
    assert sender.peak_in_flight == 2
    # The receiver's own count lags the client's hang-ups by its 20 ms polling: printed, not asserted.
    print(f"\nhanging receiver: {hooks.most_in_flight} connections seen open at once (concurrency 2)")


def test_an_endless_answer_is_cut_short(store: Store, hooks: Receiver, sender_for: Any) -> None:
    hooks.plans["/endless"] = "endless"
    add_call(store, f"{hooks.url}/endless")
    started = time.monotonic()
    sender_for(timeout="5s")
    (row,) = poll_until(lambda: done(store, 1), 10, "the call delivered")
    print(f"\nendless body: delivered in {time.monotonic() - started:.2f}s")
    assert (row.state, row.attempts) == (DELIVERED, 1)


def test_calls_of_one_stream_go_in_order_one_at_a_time(store: Store, hooks: Receiver, sender_for: Any) -> None:
    hooks.plans["/ordered"] = [503, 200]  # the first call is retried: the others wait behind it
    for n in range(5):
        add_call(store, f"{hooks.url}/ordered", stream="job:0", body=f'{{"n":{n}}}')
    sender_for()
    poll_until(lambda: done(store, 5), 10, "every call delivered")
    assert [b["n"] for b in hooks.bodies("/ordered")] == [0, 0, 1, 2, 3, 4]


def test_the_allow_list_is_checked_again_at_send_against_resolved_addresses(
    store: Store, hooks: Receiver, sender_for: Any
) -> None:
    port = hooks.url.rsplit(":", 1)[1]
    add_call(store, f"http://localhost:{port}/pinned", stream="a:0")
    add_call(store, f"http://127.0.0.1:{port}/literal", stream="b:0")
    sender_for(allow=("127.0.0.0/8",))
    rows = poll_until(lambda: done(store, 2), 10, "both delivered")
    assert [r.state for r in rows] == [DELIVERED, DELIVERED]
    (pinned,) = hooks.at("/pinned")
    assert pinned.headers["Host"] == f"localhost:{port}"  # sent to the checked address, named as asked


def test_an_address_outside_the_allow_list_is_refused_at_send(store: Store, hooks: Receiver, sender_for: Any) -> None:
    port = hooks.url.rsplit(":", 1)[1]
    add_call(store, f"http://localhost:{port}/refused", stream="a:0")
    add_call(store, f"http://127.0.0.1:{port}/refused", stream="b:0")
    sender_for(allow=("10.0.0.0/8", "hooks.example.com"))
    rows = poll_until(lambda: done(store, 2), 10, "both given up")
    assert [(r.state, r.attempts) for r in rows] == [(FAILED, 1), (FAILED, 1)]
    assert rows[0].last_error == "localhost resolves to no address in webhooks.allow"
    assert hooks.requests == []


def test_pending_calls_are_picked_up_by_a_new_sender(store: Store, hooks: Receiver, sender_for: Any) -> None:
    add_call(store, f"{hooks.url}/later")  # stored by a process that died before sending it
    sender_for()
    poll_until(lambda: done(store, 1), 10, "the call delivered")
    assert len(hooks.at("/later")) == 1


def test_headers_and_urls_are_sealed_at_rest(store: Store) -> None:
    add_call(store, f"http://127.0.0.1:9/{TOKEN}", Authorization=f"Bearer {TOKEN}")
    with store.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT url, headers, body FROM webhook_outbox").all()
    assert raw and TOKEN not in repr(raw)
    assert outbox_rows(store)[0].headers == {"Authorization": f"Bearer {TOKEN}"}
