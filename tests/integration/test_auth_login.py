"""Logins over real HTTP: 401s and their challenge, failed-login limits per IP and per username, the dummy hash
for unknown users, constant-time comparisons, scrypt off the event loop, and the cache of verified logins."""

from __future__ import annotations

import hmac
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.engine import LiveEngine
from tests.integration.auth_api import AuthApi, auth_api
from tork_ray.api import authn


@pytest.fixture(scope="module")
def api(live_engine: LiveEngine) -> Iterator[AuthApi]:
    with auth_api(live_engine) as api:
        yield api


def _from(api: AuthApi, ip: str, auth: tuple[str, str]) -> httpx.Client:
    """A client whose connections leave from `ip` (any 127.x address reaches the loopback server)."""
    return httpx.Client(base_url=api.url, auth=auth, transport=httpx.HTTPTransport(local_address=ip), timeout=30)


def test_missing_or_wrong_credentials_are_401_with_a_challenge_and_health_stays_open(api: AuthApi) -> None:
    with api.client() as http:
        assert http.get("/health").status_code == 200
        missing = http.get("/jobs")
        assert missing.status_code == 401 and missing.json() == {"message": "authentication required"}
        challenge = missing.headers["WWW-Authenticate"]
        assert challenge.startswith("Basic ") and "Bearer" in challenge
        assert http.get("/no-such-route").status_code == 401  # nothing is probed without credentials
        assert http.get("/jobs", headers={"Authorization": "Token abc"}).status_code == 401
    with api.client(auth=(api.admin[0], "wrong")) as http:
        assert http.get("/jobs").json() == {"message": "invalid username or password"}
    with api.with_key() as http:
        assert http.get("/jobs").status_code == 200


def test_failed_logins_are_limited_per_client_ip(live_engine: LiveEngine) -> None:
    with auth_api(live_engine, failures_limit=3, failures_window="1h") as api:
        user, password = api.new_user("locked")
        with _from(api, "127.0.0.7", (user, "wrong")) as http:
            # Three usernames, one failure each: only the IP's bucket runs dry.
            assert [http.get("/jobs", auth=(f"guess-{i}", "x")).status_code for i in range(3)] == [401] * 3
            refused = http.get("/jobs")
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) > 0
            assert "too many failed logins" in refused.json()["message"]
            # Locked out means locked out: the right password from that IP waits too (nothing to learn).
            assert http.get("/jobs", auth=(user, password)).status_code == 429
            assert http.get("/jobs", headers={"Authorization": "Bearer nope"}).status_code == 429
        with _from(api, "127.0.0.8", (user, password)) as http:  # another IP is not held
            assert http.get("/jobs").status_code == 200


def test_failed_logins_are_limited_per_username_across_ips(live_engine: LiveEngine) -> None:
    with auth_api(live_engine, failures_limit=3, failures_window="1h") as api:
        target, password = api.new_user("target")
        other = api.new_user("bystander")
        for ip in ("127.0.1.1", "127.0.1.2", "127.0.1.3"):  # one failure per IP: no IP bucket runs dry
            with _from(api, ip, (target, "guess")) as http:
                assert http.get("/jobs").status_code == 401
        with _from(api, "127.0.1.4", (target, password)) as http:
            assert http.get("/jobs").status_code == 429
            assert http.get("/jobs", auth=other).status_code == 200


def test_unknown_disabled_and_wrong_logins_all_cost_one_scrypt(api: AuthApi) -> None:
    user, _ = api.new_user("timing")
    cases = {"wrong password": (user, "wrong"), "unknown user": ("no-such-user-x", "wrong"), "guest": ("guest", "")}
    timings: dict[str, list[float]] = {}
    for label, credentials in cases.items():
        with api.client(auth=credentials) as http:
            for _ in range(5):
                before = api.authenticator.verifications
                started = time.perf_counter()
                assert http.get("/jobs").status_code == 401
                timings.setdefault(label, []).append(time.perf_counter() - started)
                assert api.authenticator.verifications == before + 1, label  # never cached, never skipped
    for label, values in timings.items():  # a figure, not asserted (shared machine)
        print(f"401 for {label}: median {statistics.median(values) * 1000:.1f} ms")


def test_secrets_are_compared_in_constant_time(api: AuthApi, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with api.client(headers={"Authorization": "Bearer wrong-key"}) as http:
        assert http.get("/jobs").status_code == 401
    assert calls, "the API key was not compared with hmac.compare_digest"
    calls.clear()
    with api.client(auth=(api.admin[0], "wrong")) as http:
        assert http.get("/jobs").status_code == 401
    assert calls, "the password hash was not compared with hmac.compare_digest"


def test_scrypt_runs_off_the_event_loop_and_repeated_logins_are_cached(
    api: AuthApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = api.new_user("cached")
    threads: list[str] = []
    real = authn.verify_password

    def spy(secret: str, stored: str) -> bool:
        threads.append(threading.current_thread().name)
        return real(secret, stored)

    monkeypatch.setattr(authn, "verify_password", spy)
    timings = []
    with api.client(auth=(user, password)) as http:
        for _ in range(10):
            started = time.perf_counter()
            assert http.get("/jobs").status_code == 200
            timings.append(time.perf_counter() - started)
    assert len(threads) == 1, f"{len(threads)} scrypt runs for 10 requests with the same credentials"
    assert threads[0] != "tork-api", "scrypt ran on the API's event loop thread"
    cached = statistics.median(timings[1:]) * 1000
    print(f"first login {timings[0] * 1000:.1f} ms, cached logins median {cached:.1f} ms")
    with api.client(auth=(user, "wrong")) as http:  # a wrong password never hits the cache
        assert http.get("/jobs").status_code == 401
    assert len(threads) == 2


def test_key_auth_alone_generates_a_key_when_none_is_set(
    live_engine: LiveEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="tork_ray.api.authn")
    with auth_api(live_engine, basic_enabled=False, key="", admin_username="", admin_password="") as api:
        key = api.app.state.backend.settings.auth.key
        assert len(key) >= 32
        assert sum(key in record.getMessage() for record in caplog.records) == 1
        with api.client(headers={"Authorization": f"Bearer {key}"}) as http:
            assert http.get("/jobs").status_code == 200
        with api.client(auth=api.admin) as http:  # basic auth is off: Basic credentials are no credentials
            refused = http.get("/jobs")
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        settings_text = repr(api.app.state.backend.settings)
        assert key not in settings_text
