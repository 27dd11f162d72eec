"""The submit-time rules of SPEC §1.3: every broken rule becomes one "<field path> <rule>" line."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tork_ray.errors import BadRequest, ExpressionError
from tork_ray.spec.cron import InvalidCron, parse_cron
from tork_ray.spec.models import (
    AuxTaskInput,
    DefaultsInput,
    EachInput,
    JobInput,
    LimitsInput,
    MountInput,
    PermissionInput,
    RetryInput,
    ScheduledJobInput,
    SidecarInput,
    SubJobInput,
    TaskInput,
    WebhookInput,
)
from tork_ray.spec.safety import check_document
from tork_ray.spec.units import parse_cpus, parse_duration_ns, parse_memory
from tork_ray.webhooks.targets import TargetPolicy

if TYPE_CHECKING:  # tork_ray.settings imports tork_ray.spec: only the type is needed here
    from tork_ray.settings import LimitsSettings

Exists = Callable[[str], bool] | None

# The coordinator's own queues in Tork; a task routed to one of them would never reach a worker.
COORDINATOR_QUEUES = frozenset(
    ["pending", "started", "completed", "error", "heartbeat", "jobs", "logs", "progress", "redeliveries"]
)
COMPOSITE_FORBIDDEN = (
    "image", "cmd", "entrypoint", "run", "env", "queue", "pre", "post", "mounts", "retry", "limits", "timeout",
    "redeliveries",
)  # fmt: skip
_MOUNT_CHARS = re.compile(r"^[-/.0-9a-zA-Z_= ]*$")
_MAX_NAME = 256  # the varchar(256) columns of the store
MAX_REDELIVERIES = 10  # a task's own `redeliveries` (runs again after a coordinator restart)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Checker:
    """Collects problems while walking a document; carries the optional user/role lookups."""

    def __init__(self, user_exists: Exists, role_exists: Exists, targets: TargetPolicy | None = None) -> None:
        self.problems: list[str] = []
        self.user_exists = user_exists
        self.role_exists = role_exists
        self.targets = targets or TargetPolicy()  # webhooks.allow; empty: any address

    def add(self, path: str, rule: str) -> None:
        self.problems.append(f"{path} {rule}")

    def required(self, path: str, value: object) -> bool:
        if not value:
            self.add(path, "is required")
        return bool(value)

    def max_len(self, path: str, value: str | None, limit: int) -> None:
        if value and len(value) > limit:
            self.add(path, f"must be at most {limit} characters")

    def between(self, path: str, value: int | None, lo: int, hi: int) -> None:
        if value is not None and not lo <= value <= hi:
            self.add(path, f"must be between {lo} and {hi}")

    def duration(self, path: str, value: str | None, *, allow_zero: bool = False) -> None:
        if not value:
            return
        try:
            ns = parse_duration_ns(value)
        except BadRequest as exc:
            self.add(path, f"is not a valid duration: {exc.message}")
            return
        if ns < 0 or (ns == 0 and not allow_zero):
            self.add(path, "must be a positive duration" if not allow_zero else "must not be negative")

    def expression(self, path: str, text: str | None, *, whole: bool) -> None:
        """Compile every {{…}} segment; with `whole`, a string without braces is one expression."""
        if not text:
            return
        from tork_ray.expr import check_expression  # written in parallel; imported late on purpose

        try:
            check_expression(text, bare=whole)
        except ExpressionError as exc:
            self.add(path, f"is not a valid expression: {exc.message}")


def _check_queue(c: _Checker, path: str, queue: str | None) -> None:
    if not queue:
        return
    c.max_len(path, queue, _MAX_NAME)
    if queue.startswith("x-"):
        c.add(path, "must not start with x- (reserved for node queues)")
    elif queue in COORDINATOR_QUEUES:
        c.add(path, f"must not be the coordinator queue {queue!r}")


def _check_retry(c: _Checker, path: str, retry: RetryInput | None) -> None:
    if retry is None:
        return
    if "limit" not in retry.model_fields_set:
        c.add(_at(path, "limit"), "is required")
    else:
        c.between(_at(path, "limit"), retry.limit, 1, 10)
    c.duration(_at(path, "initialDelay"), retry.initialDelay, allow_zero=True)
    if retry.scalingFactor is not None and retry.scalingFactor < 1:
        c.add(_at(path, "scalingFactor"), "must be at least 1")


def _check_limits(c: _Checker, path: str, limits: LimitsInput | None) -> None:
    if limits is None:
        return
    for key, parse, what in (("cpus", parse_cpus, "CPU count"), ("memory", parse_memory, "memory size")):
        value = getattr(limits, key)
        if not value:
            continue
        try:
            parse(value)
        except BadRequest as exc:
            c.add(_at(path, key), f"is not a valid {what}: {exc.message}")


def _check_defaults(c: _Checker, defaults: DefaultsInput | None) -> None:
    if defaults is None:
        return
    _check_retry(c, "defaults.retry", defaults.retry)
    _check_limits(c, "defaults.limits", defaults.limits)
    c.duration("defaults.timeout", defaults.timeout)
    _check_queue(c, "defaults.queue", defaults.queue)
    c.between("defaults.priority", defaults.priority, 0, 9)
    c.between("defaults.redeliveries", defaults.redeliveries, 0, MAX_REDELIVERIES)


def _check_mount(c: _Checker, path: str, mount: MountInput) -> None:
    if not c.required(_at(path, "type"), mount.type):
        return
    source, target = mount.source, mount.target
    if mount.type in ("volume", "tmpfs") and source:
        c.add(_at(path, "source"), f"must be empty for a {mount.type} mount")
    if mount.type == "bind" and not source:
        c.add(_at(path, "source"), "is required for a bind mount")
    if mount.type in ("volume", "bind", "tmpfs") and not target:
        c.add(_at(path, "target"), f"is required for a {mount.type} mount")
    for key, value in (("source", source), ("target", target)):
        if value and not _MOUNT_CHARS.match(value):
            c.add(_at(path, key), "may only contain letters, digits, space and - / . _ =")
    if target:
        # normpath folds "/tork/", "/x/../tork" and the like; the extra lstrip folds POSIX's "//tork".
        clean = "/" + posixpath.normpath(target).lstrip("/")
        if clean == "/tork":
            c.add(_at(path, "target"), "must not be /tork")
        elif clean.startswith("/tork/"):
            c.add(_at(path, "target"), "must not be under /tork")


def _check_aux(c: _Checker, path: str, aux: AuxTaskInput) -> None:
    if c.required(_at(path, "name"), aux.name):
        c.max_len(_at(path, "name"), aux.name, _MAX_NAME)
    c.max_len(_at(path, "image"), aux.image, _MAX_NAME)


def _check_sidecar(c: _Checker, path: str, sidecar: SidecarInput) -> None:
    _check_aux(c, path, sidecar)
    probe = sidecar.probe
    if probe is None:
        return
    p = _at(path, "probe")
    if c.required(_at(p, "path"), probe.path):
        c.max_len(_at(p, "path"), probe.path, 256)
    if "port" not in probe.model_fields_set:
        c.add(_at(p, "port"), "is required")
    else:
        c.between(_at(p, "port"), probe.port, 1, 65535)
    c.duration(_at(p, "timeout"), probe.timeout)


def _check_webhooks(c: _Checker, path: str, hooks: Sequence[WebhookInput] | None, templated: bool = False) -> None:
    """`templated`: a sub-job's URLs are rendered later (SPEC §3.4): one with a template is checked when called."""
    for i, hook in enumerate(hooks or ()):
        p = f"{path}[{i}]"
        if c.required(_at(p, "url"), hook.url) and not (templated and "{{" in hook.url):
            problem = c.targets.submit_problem(hook.url)
            if problem:
                c.add(_at(p, "url"), problem)
        c.expression(_at(p, "if"), hook.if_, whole=True)


def _composite_kind(task: TaskInput) -> list[str]:
    return [k for k in ("parallel", "each", "subjob") if getattr(task, k) is not None]


def _check_composite(c: _Checker, path: str, task: TaskInput) -> bool:
    """At most one of parallel/each/subjob, and none of the container fields on a composite."""
    kinds = _composite_kind(task)
    if len(kinds) > 1:
        c.add(path, "may set only one of parallel, each or subjob")
    if not kinds:
        return False
    bad = [f for f in COMPOSITE_FORBIDDEN if getattr(task, f)]
    if bad:
        c.add(path, f"is a composite task ({kinds[0]}) and must not set: {', '.join(bad)}")
    return True


def _check_each(c: _Checker, path: str, each: EachInput) -> None:
    if c.required(_at(path, "list"), each.list):
        c.expression(_at(path, "list"), each.list, whole=True)
    c.between(_at(path, "concurrency"), each.concurrency, 0, 99999)
    _check_task(c, _at(path, "task"), each.task)


def _check_subjob(c: _Checker, path: str, sub: SubJobInput) -> None:
    if c.required(_at(path, "name"), sub.name):
        c.max_len(_at(path, "name"), sub.name, _MAX_NAME)
    # Like Tork, the sub-job's tasks are not validated one by one here.
    _check_task_list(c, _at(path, "tasks"), sub.tasks, "tasks" in sub.model_fields_set)
    c.expression(_at(path, "output"), sub.output, whole=True)
    if sub.autoDelete is not None:
        c.duration(_at(path, "autoDelete.after"), sub.autoDelete.after, allow_zero=True)
    _check_webhooks(c, _at(path, "webhooks"), sub.webhooks, templated=True)


def _check_task_fields(c: _Checker, path: str, task: TaskInput) -> None:
    if c.required(_at(path, "name"), task.name):
        c.max_len(_at(path, "name"), task.name, _MAX_NAME)
    c.max_len(_at(path, "var"), task.var, 64)
    c.max_len(_at(path, "workdir"), task.workdir, 256)
    c.max_len(_at(path, "image"), task.image, _MAX_NAME)
    _check_queue(c, _at(path, "queue"), task.queue)
    c.duration(_at(path, "timeout"), task.timeout)
    c.between(_at(path, "priority"), task.priority, 0, 9)
    c.between(_at(path, "redeliveries"), task.redeliveries, 0, MAX_REDELIVERIES)
    # Unlike Tork, `if` without braces is an expression (SPEC Decisions, Q2), so check it whole.
    c.expression(_at(path, "if"), task.if_, whole=True)
    _check_retry(c, _at(path, "retry"), task.retry)
    _check_limits(c, _at(path, "limits"), task.limits)


def _check_task(c: _Checker, path: str, task: TaskInput) -> None:
    _check_task_fields(c, path, task)
    _check_composite(c, path, task)
    for key in ("pre", "post"):
        for i, aux in enumerate(getattr(task, key) or ()):
            _check_aux(c, f"{_at(path, key)}[{i}]", aux)
    for i, sidecar in enumerate(task.sidecars or ()):
        _check_sidecar(c, f"{_at(path, 'sidecars')}[{i}]", sidecar)
    for i, mount in enumerate(task.mounts or ()):
        _check_mount(c, f"{_at(path, 'mounts')}[{i}]", mount)
    if task.parallel is not None:
        _check_tasks(c, _at(path, "parallel.tasks"), task.parallel.tasks, "tasks" in task.parallel.model_fields_set)
    if task.each is not None:
        _check_each(c, _at(path, "each"), task.each)
    if task.subjob is not None:
        _check_subjob(c, _at(path, "subjob"), task.subjob)


def _check_task_list(c: _Checker, path: str, tasks: Sequence[TaskInput], present: bool) -> None:
    """A list of tasks the rules require: absent is "required", empty is "at least 1"."""
    if not present:
        c.add(path, "is required")
    elif not tasks:
        c.add(path, "must contain at least 1 item")


def _check_tasks(c: _Checker, path: str, tasks: Sequence[TaskInput], present: bool) -> None:
    _check_task_list(c, path, tasks, present)
    for i, task in enumerate(tasks):
        _check_task(c, f"{path}[{i}]", task)


def _check_permission(c: _Checker, path: str, perm: PermissionInput) -> None:
    if bool(perm.user) == bool(perm.role):
        c.add(path, "must set exactly one of user or role")
        return
    if perm.user and c.user_exists is not None and not c.user_exists(perm.user):
        c.add(_at(path, "user"), f"refers to an unknown user (invalidusername): {perm.user}")
    if perm.role and c.role_exists is not None and not c.role_exists(perm.role):
        c.add(_at(path, "role"), f"refers to an unknown role (invalidrole): {perm.role}")


def permission_problems(
    permissions: Sequence[PermissionInput], *, user_exists: Exists = None, role_exists: Exists = None
) -> list[str]:
    """The rules `permissions` break, the users and roles looked up with the given functions."""
    c = _Checker(user_exists, role_exists)
    for i, perm in enumerate(permissions):
        _check_permission(c, f"permissions[{i}]", perm)
    return c.problems


def _check_job_fields(c: _Checker, job: JobInput | ScheduledJobInput) -> None:
    if c.required("name", job.name):
        c.max_len("name", job.name, _MAX_NAME)
    _check_tasks(c, "tasks", job.tasks, "tasks" in job.model_fields_set)
    # SPEC §3.6: without braces the whole text is one expression, so `output: "plain text"` is refused.
    c.expression("output", job.output, whole=True)
    _check_defaults(c, job.defaults)
    _check_webhooks(c, "webhooks", job.webhooks)
    for i, perm in enumerate(job.permissions or ()):
        _check_permission(c, f"permissions[{i}]", perm)
    if job.autoDelete is not None:
        c.duration("autoDelete.after", job.autoDelete.after, allow_zero=True)


def _bounded(job: JobInput | ScheduledJobInput, limits: LimitsSettings | None) -> tuple[list[str], bool]:
    """The limits and character rules first (one linear pass); when a limit is broken, only those are
    reported: the per-field rules below walk tasks recursively and need the bounds to hold."""
    found = check_document(job, limits)
    if found.limits:
        return [*found.limits.values(), *found.rules], False
    return found.rules, True


def validate_job(
    job: JobInput,
    *,
    user_exists: Exists = None,
    role_exists: Exists = None,
    limits: LimitsSettings | None = None,
    webhook_targets: TargetPolicy | None = None,
) -> list[str]:
    """Every rule a job document breaks, one line each; empty when the job is valid. `limits` defaults to
    LimitsSettings()."""
    problems, within = _bounded(job, limits)
    if not within:
        return problems
    c = _Checker(user_exists, role_exists, webhook_targets)
    _check_job_fields(c, job)
    if job.wait is not None and c.required("wait.timeout", job.wait.timeout):
        c.duration("wait.timeout", job.wait.timeout)
    return c.problems + problems


def validate_scheduled_job(
    job: ScheduledJobInput,
    *,
    user_exists: Exists = None,
    role_exists: Exists = None,
    limits: LimitsSettings | None = None,
    webhook_targets: TargetPolicy | None = None,
) -> list[str]:
    """Every rule a scheduled job breaks: the job rules (there is no `wait`) plus a valid `schedule.cron`."""
    problems, within = _bounded(job, limits)
    if not within:
        return problems
    c = _Checker(user_exists, role_exists, webhook_targets)
    _check_job_fields(c, job)
    if c.required("schedule.cron", job.schedule.cron):
        try:
            parse_cron(job.schedule.cron)
        except InvalidCron as exc:
            c.add("schedule.cron", f"is not a valid cron expression: {exc.reason}")
    return c.problems + problems
