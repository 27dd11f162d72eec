"""The first admin (auth.admin.username / .password): created, or its password reset, when the API starts."""

from __future__ import annotations

import logging

from tork_ray.api.backend import Backend
from tork_ray.api.passwords import hash_password, verify_password
from tork_ray.settings import AuthSettings
from tork_ray.store.auth import ADMIN_ROLE
from tork_ray.store.store import Store

log = logging.getLogger(__name__)


def _admin_is_current(store: Store, auth: AuthSettings) -> bool:
    """Whether the configured admin exists, is enabled, is in `admin` and has the configured password: then
    nothing is written (every API process runs this at start; most find it done)."""
    login = store.auth.login(auth.admin_username)
    return (
        login is not None
        and not login.user.disabled
        and ADMIN_ROLE in login.roles
        and bool(login.password_hash)
        and verify_password(auth.admin_password, login.password_hash)
    )


async def ensure_admin(b: Backend, auth: AuthSettings) -> None:
    """Idempotent. Hashing and the check run on the API's pool; the write is the coordinator's."""
    if not auth.admin_username:
        if auth.basic_enabled:
            log.warning("basic auth is on but no auth.admin.username is set: nobody can manage users and roles")
        return
    if await b.offload(_admin_is_current, b.store, auth):
        return
    password_hash = await b.offload(hash_password, auth.admin_password)
    created = await b.coordinator.ensure_admin.remote(auth.admin_username, password_hash)
    log.info("admin user %s %s", auth.admin_username, "created" if created else "updated")
