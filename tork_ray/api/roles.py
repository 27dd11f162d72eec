"""Roles and membership (beyond Tork, which has them only in its datastore): create and read roles, and put
users in and out of them. Mounted with /users (the `users` endpoint toggle covers both)."""

# Who may call what, with auth on: reading the roles' slugs (needed to write a job's permissions) is open to
# every user; a role's members and someone else's roles, and every change, need the admin role. PUT and
# DELETE of a membership are idempotent (200 whether or not it was there).

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tork_ray.api.access import CallerDep, require_admin
from tork_ray.api.backend import Backend, backend
from tork_ray.api.schemas import ERRORS, ErrorOut, RoleIn, RoleOut, StatusOut
from tork_ray.errors import BadRequest, Forbidden

router = APIRouter(tags=["users"])
Deps = Annotated[Backend, Depends(backend)]
OK = {"status": "OK"}
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Auth is on and the caller lacks the admin role"}
}


def role_input(body: bytes) -> RoleIn:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"json: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object with slug and name")
    slug, name = data.get("slug"), data.get("name")
    if any(value is not None and not isinstance(value, str) for value in (slug, name)):
        raise BadRequest("slug and name must be strings")
    if not slug:
        raise BadRequest("must provide slug")
    if not SLUG.match(slug):
        raise BadRequest(f"invalid slug {slug[:80]!r}: lowercase letters, digits, - and _, at most 64")
    if name and len(name) > 256:
        raise BadRequest("name must be at most 256 characters")
    return RoleIn(slug=slug, name=name or slug)


@router.post(
    "/roles",
    summary="Create a role",
    response_model=RoleOut,
    response_model_exclude_none=True,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": RoleIn.model_json_schema()}}}
    },
    responses={400: ERRORS[400], 409: {"model": ErrorOut, "description": "The slug is taken"}, **ADMIN_ONLY},
)
async def create_role(request: Request, b: Deps, caller: CallerDep) -> Any:
    require_admin(caller)
    role = role_input(await request.body())
    return await b.coordinator.create_role.remote(role.slug, role.name)


@router.get("/roles", summary="Every role, by slug", response_model=list[RoleOut], response_model_exclude_none=True)
async def list_roles(b: Deps) -> Any:
    return await b.offload(b.store.auth.roles)


@router.get(
    "/roles/{slug}",
    summary="A role and its members",
    response_model=RoleOut,
    response_model_exclude_none=True,
    responses={404: ERRORS[404], **ADMIN_ONLY},
)
async def get_role(slug: str, b: Deps, caller: CallerDep) -> Any:
    require_admin(caller)
    return await b.offload(b.store.auth.role, slug)


@router.get(
    "/users/{username}/roles",
    summary="A user's roles (`public` included)",
    response_model=list[RoleOut],
    response_model_exclude_none=True,
    responses={404: ERRORS[404], 403: {"model": ErrorOut, "description": "Another user's roles, without admin"}},
)
async def user_roles(username: str, b: Deps, caller: CallerDep) -> Any:
    if caller is not None and not caller.admin and caller.username != username:
        raise Forbidden("this needs the admin role")
    return await b.offload(b.store.auth.user_roles, username)


@router.put(
    "/users/{username}/roles/{slug}",
    summary="Make a user a member of a role (idempotent)",
    response_model=StatusOut,
    responses={**ERRORS, **ADMIN_ONLY},
)
async def add_user_role(username: str, slug: str, b: Deps, caller: CallerDep) -> Any:
    require_admin(caller)
    await b.coordinator.set_role_member.remote(username, slug, True)
    return OK


@router.delete(
    "/users/{username}/roles/{slug}",
    summary="Take a user out of a role (idempotent)",
    response_model=StatusOut,
    responses={**ERRORS, **ADMIN_ONLY},
)
async def remove_user_role(username: str, slug: str, b: Deps, caller: CallerDep) -> Any:
    require_admin(caller)
    await b.coordinator.set_role_member.remote(username, slug, False)
    return OK
