"""Authentication: HTTP basic against users, and the API key (`Authorization: Bearer <key>`) (SPEC §6.2).

Secrets are compared in constant time, and an unknown or disabled username costs the same scrypt as a wrong
password (a dummy hash is verified), so neither the answer nor its timing tells which usernames exist. scrypt
(tens of ms) runs on the API's thread pool, never on the event loop; a verified username/password pair is
remembered for `auth.cache.ttl` under a keyed digest that includes the stored hash, so a changed password
misses at once. Failed logins are limited per client IP and per username (429 with Retry-After), for the whole
cluster: the counts live in the store (api/login_limit.py), so N API replicas do not allow N times the tries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tork_ray.api.access import KEY_HOLDER, Caller
from tork_ray.api.login_limit import FailureLimiter, SharedLimit
from tork_ray.api.offload import Offload
from tork_ray.api.passwords import hash_password, verify_password
from tork_ray.settings import AuthSettings, Settings
from tork_ray.spec.units import parse_duration
from tork_ray.store.store import Store

log = logging.getLogger(__name__)

CACHE_ENTRIES = 1024


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class VerifiedCache:
    """Digests of recently verified (username, password, stored hash) triples; bounded, each kept `ttl` s."""

    def __init__(self, ttl: float, entries: int = CACHE_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.entries = entries
        self.clock = clock
        self._pepper = secrets.token_bytes(32)  # per process: the digests are worthless outside it
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()  # used from the API's threads

    def key(self, username: str, password: str, stored_hash: str) -> bytes:
        message = b"\0".join(part.encode() for part in (username, password, stored_hash))
        return hmac.new(self._pepper, message, hashlib.sha256).digest()

    def fresh(self, key: bytes) -> bool:
        with self._lock:
            until = self._seen.get(key)
            if until is None or until < self.clock():
                self._seen.pop(key, None)
                return False
            return True

    def add(self, key: bytes) -> None:
        with self._lock:
            self._seen[key] = self.clock() + self.ttl
            self._seen.move_to_end(key)
            while len(self._seen) > self.entries:
                self._seen.popitem(last=False)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def with_key(settings: Settings) -> Settings:
    """Key auth on with no key: a random key, logged once (as Tork does), so the operator can use it. Called
    once where the engine starts, so every API process (each Serve replica) shares the same key."""
    auth = settings.auth
    if not auth.key_enabled or auth.key:
        return settings
    key = secrets.token_urlsafe(32)
    log.warning("middleware.web.keyauth.key is empty: generated API key %s", key)
    return replace(settings, auth=replace(auth, key=key))


class Authenticator:
    def __init__(self, settings: AuthSettings, store: Store, offload: Offload, coordinator: Any = None) -> None:
        self.settings = settings
        self.store = store
        self.offload = offload
        window = parse_duration(settings.failures_window)
        self.limiter = FailureLimiter(settings.failures_limit, window)  # this process's: refuses with no I/O
        # The cluster's (every replica's failures), when there is a coordinator to write them.
        self.shared = SharedLimit(store, coordinator, settings.failures_limit, window) if coordinator else None
        self.cache = VerifiedCache(parse_duration(settings.cache_ttl))
        self._dummy_hash: str | None = None
        self._challenge = ", ".join(
            scheme
            for scheme, on in (('Basic realm="tork", charset="UTF-8"', settings.basic_enabled),
                               ('Bearer realm="tork"', settings.key_enabled))
            if on
        )  # fmt: skip
        self.verifications = 0  # scrypt runs for logins (a figure for tests and metrics)

    def _refuse(self, message: str) -> Refusal:
        return Refusal(401, message, {"WWW-Authenticate": self._challenge})

    async def authenticate(self, authorization: str | None, client_ip: str) -> Caller | Refusal:
        if not authorization:
            return self._refuse("authentication required")
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.settings.key_enabled:
            return await self._check_key(value.strip(), f"ip:{client_ip}")
        if scheme == "basic" and self.settings.basic_enabled:
            return await self._check_basic(value.strip(), client_ip)
        return self._refuse("authentication required")

    @staticmethod
    def _too_many(wait: int) -> Refusal | None:
        if wait:
            return Refusal(429, "too many failed logins: try again later", {"Retry-After": str(wait)})
        return None

    def _shared_wait(self, *keys: str) -> int:
        """Blocking: what the cluster's counts say (0 with no coordinator to share them through)."""
        return self.shared.retry_after(*keys) if self.shared else 0

    async def _failed(self, *keys: str) -> None:
        self.limiter.failed(*keys)
        if self.shared:
            await self.shared.failed(*keys)

    async def _check_key(self, key: str, ip_key: str) -> Caller | Refusal:
        if refusal := self._too_many(self.limiter.retry_after(ip_key) or await self.offload(self._shared_wait, ip_key)):
            return refusal
        # Digests first: compare_digest is constant-time over equal lengths, and these are always 32 bytes.
        if hmac.compare_digest(_digest(key), _digest(self.settings.key)):
            return KEY_HOLDER
        await self._failed(ip_key)
        return self._refuse("invalid API key")

    async def _check_basic(self, value: str, client_ip: str) -> Caller | Refusal:
        try:
            username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, sep, password = "", "", ""
        if not sep or not username:
            await self._failed(f"ip:{client_ip}")
            return self._refuse("malformed basic credentials")
        keys = (f"ip:{client_ip}", f"user:{username}")
        if refusal := self._too_many(self.limiter.retry_after(*keys)):
            return refusal
        # One thread hop for both: the cluster's counts (one read), then the password (a read, maybe a scrypt).
        caller = await self.offload(self._verify_within_limit, keys, username, password)
        if isinstance(caller, Refusal):
            return caller
        if caller is None:
            await self._failed(*keys)
            return self._refuse("invalid username or password")
        return caller

    def _verify_within_limit(self, keys: tuple[str, ...], username: str, password: str) -> Caller | Refusal | None:
        return self._too_many(self._shared_wait(*keys)) or self.verify(username, password)

    def verify(self, username: str, password: str) -> Caller | None:
        """Blocking (a store read, maybe a scrypt): the caller, or None for any wrong pair."""
        login = self.store.auth.login(username)
        usable = login is not None and not login.user.disabled and bool(login.password_hash)
        stored = login.password_hash if login is not None and usable else ""
        key = self.cache.key(username, password, stored)
        if not (usable and self.cache.fresh(key)):
            self.verifications += 1
            # Unknown, disabled or password-less (the guest): a dummy hash is verified all the same.
            matches = verify_password(password, stored or self._dummy())
            if not (usable and matches):
                return None
            self.cache.add(key)
        assert login is not None
        return Caller(username=login.user.username, roles=login.roles, user=login.user)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(secrets.token_urlsafe(16))
        return self._dummy_hash
