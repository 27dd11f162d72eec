"""POST /users: create a user; the password is kept only as a slow salted hash and never returned."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tork_ray.api import roles
from tork_ray.api.access import CallerDep, require_admin
from tork_ray.api.backend import Backend, backend
from tork_ray.api.passwords import hash_password
from tork_ray.api.schemas import ERRORS, UserIn, UserOut
from tork_ray.errors import BadRequest

router = APIRouter(tags=["users"])
Deps = Annotated[Backend, Depends(backend)]


def _user_input(body: bytes) -> UserIn:
    # Tork reads the body as JSON whatever the content type says.
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"json: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object with username and password")
    fields = {key: data.get(key) for key in ("username", "password", "name")}
    if any(value is not None and not isinstance(value, str) for value in fields.values()):
        raise BadRequest("username, password and name must be strings")
    user = UserIn(**{key: value or "" for key, value in fields.items()})
    # A username of only blanks is no username (SPEC §5.1: `must provide username`), not a user to create.
    if not user.username.strip():
        raise BadRequest("must provide username")
    if not user.password:
        raise BadRequest("must provide password")
    return user


def _user_and_hash(body: bytes) -> tuple[UserIn, str]:
    user = _user_input(body)
    return user, hash_password(user.password)


@router.post(
    "/users",
    summary="Create a user",
    response_model=UserOut,
    response_model_exclude_none=True,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UserIn.model_json_schema()}},
        }
    },
    responses={400: ERRORS[400], **roles.ADMIN_ONLY},
)
async def create_user(request: Request, b: Deps, caller: CallerDep) -> Any:
    require_admin(caller)  # with auth on, only an admin creates users
    # Reading a body of up to 500 KB, and scrypt's tens of ms (on purpose): off the event loop, and off the
    # coordinator's.
    user, password_hash = await b.offload(_user_and_hash, await request.body())
    created = await b.coordinator.create_user.remote(user.username, user.name, password_hash)
    return created.model_dump(by_alias=True, mode="json", exclude_none=True, exclude={"disabled"})


router.include_router(roles.router)  # roles and membership share the `users` endpoint toggle
