"""The coordinator's writes of roles and role membership (it is the only writer of the store)."""

from __future__ import annotations

from typing import Any

from tork_ray.errors import AlreadyExists, BadRequest
from tork_ray.store.auth import PUBLIC_ROLE
from tork_ray.store.store import Store


def create_role(store: Store, slug: str, name: str) -> dict[str, Any]:
    role = store.auth.create_role(slug, name)
    if role is None:
        raise AlreadyExists(f"role {slug} already exists")
    return role


def set_role_member(store: Store, username: str, slug: str, member: bool) -> None:
    if slug == PUBLIC_ROLE:
        raise BadRequest(f"every user is a member of role {PUBLIC_ROLE}: its membership cannot be changed")
    store.auth.set_member(username, slug, member)
