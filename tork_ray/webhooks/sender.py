"""The sender: drains the webhook outbox on its own thread and event loop, so no call (slow, dead or hostile
receiver) ever waits on the coordinator's loop or holds up a job; it reads and marks outbox rows only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

import httpx

from tork_ray.domain.models import utcnow
from tork_ray.store import webhook_outbox as outbox
from tork_ray.store.store import Store
from tork_ray.store.webhook_outbox import Call
from tork_ray.webhooks.config import WebhookSettings
from tork_ray.webhooks.signing import DELIVERY_HEADER, signed_headers
from tork_ray.webhooks.targets import TargetRefused, default_port, ip_literal, resolve, split_url

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json; charset=UTF-8"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RESPONSE_CAP = 64 * 1024  # bytes of a response read at most: an endless body is cut, not drained
IDLE_SECONDS = 1.0  # looks for due retries at least this often when nothing wakes it


class Outcome:
    """What one attempt came to: delivered, to be retried, or given up; `reason` is safe to log."""

    def __init__(self, kind: str, reason: str = "") -> None:
        self.kind, self.reason = kind, reason


DELIVERED = Outcome("delivered")


def _retry(reason: str) -> Outcome:
    return Outcome("retry", reason)


def _give_up(reason: str) -> Outcome:
    return Outcome("give up", reason)


class WebhookSender:
    """Started once per coordinator process; picks up what a previous process left pending."""

    def __init__(self, store: Store, settings: WebhookSettings) -> None:
        self._store = store
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._ready: deque[Call] = deque()  # read, not started yet: at most `batch`
        self._done: list[tuple[Call, Outcome]] = []  # ended, outcome not stored yet (still in flight)
        self.peak_in_flight = 0  # the most calls ever in flight at once (a figure for tests and benchmarks)

    # --- from any thread ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="webhook-sender", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """New rows were stored: look now instead of at the next idle tick."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the sender's own thread ------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception:
            log.exception("the webhook sender stopped")

    async def _run(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        settings = self._settings
        limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
        # No redirects followed (a 3xx gives up), no proxy or .netrc from the environment.
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False, limits=limits) as client:
            while not self._stopping:
                try:
                    await self._record_done()
                    await self._fill(client)
                except Exception:  # the store may be briefly unavailable: try again at the next tick
                    log.exception("webhook outbox could not be read or written")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_seconds())
            for task in list(self._inflight.values()):
                task.cancel()
            with contextlib.suppress(Exception):  # what ended is stored; the rest is made again after a start
                await self._record_done()

    def _idle_seconds(self) -> float:
        return max(0.01, min(IDLE_SECONDS, self._settings.delay_seconds(1) / 2))

    async def _fill(self, client: httpx.AsyncClient) -> None:
        """Starts due calls while fewer than `concurrency` are in flight. Rows are read `batch` at a time into a
        short queue, read again only once it is empty: each is the head of its stream, and stays so (only this
        sender changes rows; the coordinator adds later ones), so the queue keeps each stream's order."""
        concurrency = self._settings.concurrency
        if len(self._inflight) >= concurrency:
            return
        if not self._ready:
            busy = set(self._inflight)
            calls = await asyncio.to_thread(outbox.due_calls, self._store, utcnow(), busy, self._settings.batch)
            self._ready.extend(calls)
        while self._ready and len(self._inflight) < concurrency:
            call = self._ready.popleft()
            self._inflight[call.id] = asyncio.get_running_loop().create_task(self._deliver(client, call))
        self.peak_in_flight = max(self.peak_in_flight, len(self._inflight))

    async def _deliver(self, client: httpx.AsyncClient, call: Call) -> None:
        try:
            outcome = await self._attempt(client, call)
        except Exception:  # a bug, not the receiver's doing: the call is tried again later
            log.exception("webhook call %d of job %s failed unexpectedly", call.id, call.job_id)
            outcome = _retry("internal error")
        self._done.append((call, outcome))
        if self._wake is not None:
            self._wake.set()

    async def _record_done(self) -> None:
        """Stores the outcomes of the calls that ended since the last turn, in one transaction, and only then
        frees their slots: a call stays in flight until its row says what became of it, so it is never read
        again as pending meanwhile. Should the store fail, the rows stay pending and the calls are made again."""
        if not self._done:
            return
        done, self._done = self._done, []
        try:
            await asyncio.to_thread(self._record, done)
        finally:
            for call, _ in done:
                self._inflight.pop(call.id, None)

    def _record(self, done: list[tuple[Call, Outcome]]) -> None:
        now = utcnow()
        changes: list[tuple[int, dict[str, Any]]] = []
        gave_up: list[tuple[Call, int, str]] = []
        for call, outcome in done:
            attempts = call.attempts + 1
            if outcome is DELIVERED:
                changes.append((call.id, outbox.delivered(attempts, now)))
            elif outcome.kind == "retry" and attempts < self._settings.attempts:
                next_at = now + timedelta(seconds=self._settings.delay_seconds(attempts))
                changes.append((call.id, outbox.retry_at(attempts, next_at, outcome.reason)))
            else:
                changes.append((call.id, outbox.given_up(attempts, now, outcome.reason)))
                gave_up.append((call, attempts, outcome.reason))
        outbox.record(self._store, changes)
        for call, attempts, reason in gave_up:
            # Never the URL, the headers or the body: any of them may carry a secret.
            what = (call.event, call.job_id, attempts, reason)
            log.warning("webhook %s of job %s: gave up after %d attempt(s): %s", *what)

    async def _attempt(self, client: httpx.AsyncClient, call: Call) -> Outcome:
        body = call.body.encode()
        headers = {**call.headers, "Content-Type": CONTENT_TYPE, DELIVERY_HEADER: call.delivery}
        if self._settings.secret:
            headers.update(signed_headers(self._settings.secret, int(time.time()), body))
        try:
            async with asyncio.timeout(self._settings.timeout_seconds()):  # the lookup, the call and the answer
                url, extensions = await self._target(call.url, headers)
                return await self._post(client, url, headers, body, extensions)
        except TargetRefused as exc:
            return _give_up(exc.message)
        except TimeoutError:
            return _retry("timed out")
        except httpx.TransportError as exc:
            return _retry(f"network error: {type(exc).__name__}")
        except OSError as exc:  # the name does not resolve (now): a network error too
            return _retry(f"resolving the host failed: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return _give_up(f"request error: {type(exc).__name__}")

    async def _post(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes, extensions: dict[str, Any]
    ) -> Outcome:
        async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
            read = 0
            async for chunk in response.aiter_raw():  # read a little of the answer, never all of an endless one
                read += len(chunk)
                if read >= RESPONSE_CAP:
                    break
            status = response.status_code
        if 200 <= status < 300:
            return DELIVERED
        if status in RETRY_STATUSES:
            return _retry(f"status {status}")
        return _give_up(f"status {status}")

    async def _target(self, url: str, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """The URL to connect to: as given when any address is allowed or its host is a listed name; else
        the URL with its host replaced by a resolved address inside a listed network (the Host header and,
        for https, the TLS server name keep the name), so the call goes to the address that was checked."""
        parts = split_url(url)
        policy = self._settings.policy
        host = parts.hostname or ""
        if not policy.restricted or policy.name_allowed(host):
            return url, {}
        literal = ip_literal(host)
        addresses = [str(literal)] if literal is not None else await resolve(host, default_port(parts))
        address = policy.pick_address(host, addresses)
        if literal is not None:
            return url, {}
        netloc = f"[{address}]" if ":" in address else address
        if "@" in parts.netloc:  # credentials in the URL stay with it
            netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
        if parts.port:
            netloc += f":{parts.port}"
        headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
        extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme.lower() == "https" else {}
        return parts._replace(netloc=netloc).geturl(), extensions
