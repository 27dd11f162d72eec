"""Who is calling, and which jobs they may touch: the one place access to a job is decided (SPEC §6.2).

Access to a job = the job has no permissions, or the caller is listed in them (directly or through one of
their roles; every user is in `public`), or created it, or is an admin (role `admin`, or the API key). With
auth off the caller is None and sees everything, as in Tork. A job the caller may not see answers 404, as if
it did not exist (Decisions). Lists are filtered in SQL (store.auth.visible_clause) by the same rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from tork_ray.api import views
from tork_ray.api.backend import Backend
from tork_ray.domain.models import Job, Task, User
from tork_ray.errors import Forbidden, NotFound, ValidationFailed
from tork_ray.spec.models import JobInput, PermissionInput, ScheduledJobInput
from tork_ray.spec.validate import permission_problems
from tork_ray.store.auth import ADMIN_ROLE, PUBLIC_ROLE, Viewer

SpecT = TypeVar("SpecT", JobInput, ScheduledJobInput)
SCOPE_KEY = "tork.caller"  # where the auth middleware leaves the caller in the ASGI scope


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: a user with their role slugs, or (user None) the holder of the API key."""

    username: str
    roles: frozenset[str]
    user: User | None = None

    @property
    def admin(self) -> bool:
        return ADMIN_ROLE in self.roles


KEY_HOLDER = Caller(username="", roles=frozenset({ADMIN_ROLE, PUBLIC_ROLE}))


async def current_caller(request: Request) -> Caller | None:
    """FastAPI dependency: the caller the auth middleware authenticated; None when auth is off."""
    caller: Caller | None = request.scope.get(SCOPE_KEY)
    return caller


CallerDep = Annotated[Caller | None, Depends(current_caller)]


def restricted(caller: Caller | None) -> bool:
    """Whether what `caller` sees must be checked at all (not with auth off, not for an admin)."""
    return caller is not None and not caller.admin


def visible(caller: Caller | None, permissions: Iterable[Mapping[str, Any]] | None, created_by: str = "") -> bool:
    """May `caller` see a job (or scheduled job) with these `permissions`, created by `created_by`?"""
    if caller is None or not restricted(caller):
        return True
    perms = list(permissions or ())
    if not perms or (created_by and created_by == caller.username):
        return True
    return any(p.get("user") == caller.username or p.get("role") in caller.roles for p in perms)


def job_visible(caller: Caller | None, job: Job) -> bool:
    return visible(caller, job.permissions, job.created_by.username)


def viewer(caller: Caller | None) -> Viewer | None:
    """The filter of a job list (store.list_jobs(viewer=...)); None lists everything."""
    return Viewer(caller.username, caller.roles) if caller is not None and restricted(caller) else None


def visible_job(b: Backend, job_id: str, caller: Caller | None) -> Job:
    """The job, or NotFound("job not found") when it does not exist or the caller may not see it.
    Blocking (a store read): call it on the API's pool, `await b.offload(visible_job, b, job_id, caller)`."""
    job = views.load_job(b, job_id)
    if not job_visible(caller, job):
        raise NotFound("job not found")
    return job


def visible_task(b: Backend, task_id: str, caller: Caller | None) -> Task:
    """The task, or NotFound("task not found") when it does not exist or its job is hidden from the caller."""
    task = views.load_task(b, task_id)
    if restricted(caller) and not job_visible(caller, views.load_job(b, task.job_id)):
        raise NotFound("task not found")
    return task


def require_admin(caller: Caller | None) -> None:
    """Managing users and roles: anyone with auth off (as Tork), an admin with it on; 403 otherwise."""
    if caller is not None and not caller.admin:
        raise Forbidden("this needs the admin role")


def created_by(caller: Caller | None) -> User | None:
    """Who a job submitted by `caller` records as `createdBy` (None: the guest, with auth off or the key)."""
    return caller.user if caller is not None else None


def checked_permissions(b: Backend, spec: SpecT) -> SpecT:
    """`spec` with its permissions checked against the store (an unknown user or role → 400 naming it, Tork's
    `invalidusername` / `invalidrole`) and resolved to usernames and role slugs (a reference may be an id).
    Blocking (a store read): on the API's pool."""
    perms = spec.permissions or []
    if not perms:
        return spec
    users, roles = b.store.auth.existing({p.user for p in perms if p.user}, {p.role for p in perms if p.role})
    problems = permission_problems(perms, user_exists=users.__contains__, role_exists=roles.__contains__)
    if problems:
        raise ValidationFailed(problems)
    resolved = [
        PermissionInput(user=users[p.user]) if p.user else PermissionInput(role=roles[str(p.role)]) for p in perms
    ]
    return spec.model_copy(update={"permissions": resolved})
