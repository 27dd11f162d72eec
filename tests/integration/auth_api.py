"""An API with basic and key auth on, over the session engine's coordinator and store, and its callers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
from fastapi import FastAPI

from tests.engine import LiveEngine
from tork_ray.api.app import create_app
from tork_ray.api.authn import Authenticator
from tork_ray.api.background import serve_in_thread
from tork_ray.settings import AuthSettings


@dataclass
class AuthApi:
    url: str
    app: FastAPI
    key: str
    admin: tuple[str, str]
    tag: str

    @property
    def authenticator(self) -> Authenticator:
        authenticator: Authenticator = self.app.state.authenticator
        return authenticator

    def client(self, auth: Any = None, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, headers=headers, timeout=60)

    def as_admin(self) -> httpx.Client:
        return self.client(auth=self.admin)

    def with_key(self) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {self.key}"})

    def new_user(self, name: str) -> tuple[str, str]:
        """A fresh user (unique to this API: the store is the session's), made by the admin over HTTP."""
        username, password = f"{name}-{self.tag}-{uuid.uuid4().hex[:4]}", f"pw-{name}-{uuid.uuid4().hex[:8]}"
        with self.as_admin() as http:
            response = http.post("/users", json={"username": username, "password": password})
            assert response.status_code == 200, response.text
        return username, password

    def new_role(self, slug: str, *members: str) -> str:
        slug = f"{slug}-{self.tag}-{uuid.uuid4().hex[:4]}"
        with self.as_admin() as http:
            assert http.post("/roles", json={"slug": slug}).status_code == 200
            for member in members:
                assert http.put(f"/users/{member}/roles/{slug}").status_code == 200
        return slug


@contextmanager
def auth_api(live_engine: LiveEngine, **auth: Any) -> Iterator[AuthApi]:
    tag = uuid.uuid4().hex[:6]
    values: dict[str, Any] = {
        "basic_enabled": True,
        "key_enabled": True,
        "key": f"key-{tag}",
        "admin_username": f"root-{tag}",
        "admin_password": f"admin-password-{tag}",
        # Route walks send many wrong credentials from one IP: the failure limit has its own tests.
        "failures_limit": 100_000,
        **auth,
    }
    settings = replace(live_engine.settings, auth=AuthSettings(**values))
    app = create_app(settings, live_engine.coordinator, live_engine.store)
    with serve_in_thread(app) as url:
        yield AuthApi(url, app, str(values["key"]), (values["admin_username"], values["admin_password"]), tag)
