"""Pure parts of authentication and access: the failure limiter, the verified-login cache, the access rule,
the permission rows, the auth settings and the client's credentials."""

from __future__ import annotations

import httpx
import pytest

from tork_ray.api.access import KEY_HOLDER, Caller, restricted, viewer, visible
from tork_ray.api.authn import VerifiedCache
from tork_ray.api.login_limit import FailureLimiter
from tork_ray.client import credentials
from tork_ray.domain.models import Job, User
from tork_ray.errors import BadRequest
from tork_ray.settings import load_settings
from tork_ray.store.auth import perm_rows


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_spend_a_bucket_that_refills_over_the_window() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60.0, clock)
    for _ in range(3):
        assert limiter.retry_after("ip:a", "user:x") == 0
        limiter.failed("ip:a", "user:x")
    assert limiter.retry_after("ip:a") == 20  # one failure comes back every 20 s
    assert limiter.retry_after("user:x", "ip:b") == 20  # any held key holds the attempt
    assert limiter.retry_after("ip:b", "user:y") == 0
    clock.now += 20
    assert limiter.retry_after("ip:a") == 0


def test_the_limiter_keeps_bounded_memory() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60.0, clock, max_keys=100)
    for i in range(10_000):
        limiter.failed(f"user:{i}")
    assert len(limiter) <= 100
    limiter.failed("ip:attacker")
    limiter.failed("ip:attacker")
    limiter.failed("ip:attacker")
    assert limiter.retry_after("ip:attacker") > 0  # the newest keys are the ones kept


def test_the_cache_forgets_after_its_ttl_and_is_bounded() -> None:
    clock = Clock()
    cache = VerifiedCache(30.0, entries=10, clock=clock)
    key = cache.key("alice", "secret", "scrypt$hash1")
    cache.add(key)
    assert cache.fresh(key)
    assert not cache.fresh(cache.key("alice", "secret", "scrypt$hash2"))  # a new password hash: a miss
    assert not cache.fresh(cache.key("alice", "other", "scrypt$hash1"))
    clock.now += 31
    assert not cache.fresh(key)
    for i in range(50):
        cache.add(cache.key("u", str(i), "h"))
    assert len(cache._seen) == 10
    assert b"secret" not in key  # a keyed digest, not the password


def _job(permissions: list[dict[str, str]] | None, creator: str = "carol") -> Job:
    return Job(name="j", permissions=permissions, created_by=User(id="c", name="C", username=creator))


@pytest.mark.parametrize(
    ("caller", "permissions", "sees"),
    [
        (None, [{"user": "bob"}], True),  # auth off: everything
        (KEY_HOLDER, [{"user": "bob"}], True),  # the key is an admin
        (Caller("root", frozenset({"admin", "public"})), [{"user": "bob"}], True),
        (Caller("alice", frozenset({"public"})), None, True),  # no permissions: everyone
        (Caller("alice", frozenset({"public"})), [], True),
        (Caller("alice", frozenset({"public"})), [{"user": "bob"}], False),
        (Caller("bob", frozenset({"public"})), [{"user": "bob"}], True),
        (Caller("alice", frozenset({"public", "ops"})), [{"role": "ops"}], True),
        (Caller("alice", frozenset({"public"})), [{"role": "ops"}], False),
        (Caller("alice", frozenset({"public"})), [{"role": "public"}], True),
        (Caller("carol", frozenset({"public"})), [{"user": "bob"}], True),  # the creator
    ],
)
def test_the_access_rule(caller: Caller | None, permissions: list[dict[str, str]] | None, sees: bool) -> None:
    job = _job(permissions)
    assert visible(caller, job.permissions, job.created_by.username) is sees
    assert (viewer(caller) is None) is (not restricted(caller))


def test_permission_rows_name_each_subject_and_the_creator_once() -> None:
    rows = perm_rows([_job([{"user": "bob"}, {"role": "ops"}, {"user": "carol"}]), _job(None), _job([])])
    assert sorted((r["kind"], r["subject"]) for r in rows) == [("role", "ops"), ("user", "bob"), ("user", "carol")]


def test_auth_settings_from_env_keep_secrets_out_of_repr() -> None:
    settings = load_settings(
        {
            "TORK_MIDDLEWARE_WEB_BASICAUTH_ENABLED": "true",
            "TORK_MIDDLEWARE_WEB_KEYAUTH_ENABLED": "true",
            "TORK_MIDDLEWARE_WEB_KEYAUTH_KEY": "the-api-key",
            "TORK_AUTH_ADMIN_USERNAME": "root",
            "TORK_AUTH_ADMIN_PASSWORD": "the-admin-password",
            "TORK_AUTH_FAILURES_LIMIT": "5",
        },
        config_file=None,
    )
    auth = settings.auth
    assert (auth.basic_enabled, auth.key_enabled, auth.key, auth.admin_username) == (True, True, "the-api-key", "root")
    assert auth.failures_limit == 5
    assert "the-api-key" not in repr(settings) and "the-admin-password" not in repr(settings)
    with pytest.raises(BadRequest, match="set together"):
        load_settings({"TORK_AUTH_ADMIN_USERNAME": "root"})
    with pytest.raises(BadRequest, match=r"auth\.failures\.window"):
        load_settings({"TORK_AUTH_FAILURES_WINDOW": "soon"})


def test_client_credentials_come_from_arguments_then_the_environment() -> None:
    env = {"TORK_USERNAME": "envuser", "TORK_PASSWORD": "envpw"}
    auth, headers = credentials(environ=env)
    assert isinstance(auth, httpx.BasicAuth) and headers == {}
    request = next(auth.auth_flow(httpx.Request("GET", "http://x")))
    assert request.headers["Authorization"] == httpx.BasicAuth("envuser", "envpw")._auth_header
    assert credentials(token="k", environ=env) == (None, {"Authorization": "Bearer k"})
    assert credentials(environ={"TORK_TOKEN": "t"}) == (None, {"Authorization": "Bearer t"})
    assert credentials(environ={}) == (None, {})
    auth, _ = credentials(username="u", password="p", environ=env)
    assert isinstance(auth, httpx.BasicAuth) and auth._auth_header == httpx.BasicAuth("u", "p")._auth_header
