"""The coordinator's side of webhooks: for each change, the calls it fires, staged as outbox rows in the
change's own transaction (so they exist exactly when the change does: rolled back with it, kept by a crash)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from tork_ray.domain.models import Job, Task, new_id, utcnow
from tork_ray.domain.redact import Redactor
from tork_ray.domain.states import JobState, TaskState
from tork_ray.errors import ExpressionError
from tork_ray.expr import render
from tork_ray.settings import LimitsSettings
from tork_ray.store.webhook_tables import OUTBOX, PENDING
from tork_ray.webhooks import events
from tork_ray.webhooks.events import Fired
from tork_ray.webhooks.targets import TargetRefused, split_url

log = logging.getLogger(__name__)

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(r"[\r\n\0]")
HIDDEN_CACHE = 1000  # jobs whose hidden values are kept between their events


class Staging:
    """What the outbox needs of the writer: where rows go, a job by id, and a hook run once they are stored."""

    def __init__(
        self,
        stage: Callable[[str, list[Any]], None],
        job: Callable[[str], Job | None],
        after_commit: Callable[[Callable[[], None]], None],
    ) -> None:
        self.stage, self.job, self.after_commit = stage, job, after_commit


class WebhookOutbox:
    """A ChangeWatcher of the StateWriter. Everything here runs on the coordinator's loop inside an event, so
    it stays cheap: a job without webhooks costs one attribute test; the calls themselves are made elsewhere
    (sender.py). It never raises: a webhook must not fail or change a job."""

    def __init__(self, staging: Staging, redactor: Redactor, limits: LimitsSettings, wake: Callable[[], None]) -> None:
        self._staging = staging
        self._redactor = redactor
        self._limits = limits
        self._wake = wake
        # job id -> (the context it was walked for, the values it hides): kept for the context object itself,
        # so a new context (or a recycled id()) is never mistaken for the one walked.
        self._hidden: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def job_changed(self, job: Job, old: JobState | None, changes: dict[str, Any]) -> None:
        if not job.webhooks:
            return
        try:
            fired = events.job_fired(old, job.state, changes)
            if fired is not None:
                self._fire(job, fired, None)
        except Exception:
            log.exception("webhooks of job %s: the calls of a change could not be prepared", job.id)

    def task_changed(self, task: Task, old: TaskState | None, changes: dict[str, Any]) -> None:
        try:
            fired = events.task_fired(task, old, task.state, changes)
            if fired is None:
                return
            job = self._staging.job(task.job_id)
            if job is not None and job.webhooks:
                self._fire(job, fired, task)
        except Exception:
            log.exception("webhooks of task %s: the calls of a change could not be prepared", task.id)

    def _fire(self, job: Job, fired: Fired, task: Task | None) -> None:
        hooks = [(i, h) for i, h in enumerate(job.webhooks or []) if events.hook_event(h) == fired.event]
        if not hooks:
            return
        context: dict[str, Any] = {"job": events.job_view(job, fired.state)}
        if task is not None:
            context["task"] = events.task_view(task)
        wanted = [(index, hook) for index, hook in hooks if self._wanted(job, index, hook, context)]
        if not wanted:
            return
        body = self._body(job, fired, task)  # only once a call is made: the walk over the job is the costly part
        rows = [self._row(job, index, hook, fired.event, body) for index, hook in wanted]
        self._staging.stage(OUTBOX, rows)
        self._staging.after_commit(self._wake)

    def _body(self, job: Job, fired: Fired, task: Task | None) -> str:
        """The payload, redacted with every value the job (and the task) hides (Decisions: redacted always). The
        task definitions are left out of the walk: they are templates, and walking all of them at every event
        would make a job of many tasks quadratic; a task's rendered values are in its own spec."""
        hidden = self._job_hidden(job) + (self._redactor.hidden_values(task.spec) if task is not None else [])
        payload = events.task_summary(task) if task is not None else events.job_summary(job, fired.state)
        return json.dumps(self._redactor.redact(payload, hidden), separators=(",", ":"))

    def _job_hidden(self, job: Job) -> list[str]:
        """What the job hides, walked once per version of its context (a job's events mostly share one: the
        context is replaced, never changed in place, when a task's result is recorded)."""
        cached = self._hidden.get(job.id)
        if cached is not None and cached[0] is job.context:
            return cached[1]
        document = job.model_dump(mode="json", by_alias=True, exclude={"tasks"})
        hidden = self._redactor.hidden_values(document) + job.hidden
        if len(self._hidden) >= HIDDEN_CACHE:
            self._hidden.pop(next(iter(self._hidden)))
        self._hidden[job.id] = (job.context, hidden)
        return hidden

    def _wanted(self, job: Job, index: int, hook: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
        try:
            split_url(str(hook.get("url") or ""))  # a sub-job's URL is rendered: only its shape is known now
            return events.condition_holds(hook.get("if"), context, self._limits)
        except TargetRefused as exc:  # the text never names the URL: a rendered one may hold a secret
            log.warning("webhook %d of job %s skipped: its url %s", index, job.id, exc.message)
        except ExpressionError as exc:
            log.info("webhook %d of job %s skipped: %s", index, job.id, exc.message)
        return False

    def _row(self, job: Job, index: int, hook: Mapping[str, Any], event: str, body: str) -> dict[str, Any]:
        now = utcnow()
        return {
            "delivery": new_id(),
            "stream": f"{job.id}:{index}",
            "job_id": job.id,
            "event": event,
            "url": str(hook.get("url") or ""),
            "headers": self._headers(job, index, hook.get("headers") or {}),
            "body": body,
            "state": PENDING,
            "attempts": 0,
            "next_at": now,
            "created_at": now,
        }

    def _headers(self, job: Job, index: int, headers: Mapping[str, Any]) -> dict[str, str]:
        """The headers rendered with the job's context now, at the change (Tork renders them when it calls,
        a moment later). A header that fails to render is sent empty, as Tork's; one that is not a valid HTTP
        header is left out. Neither the value nor the template is logged (either may hold a secret)."""
        out: dict[str, str] = {}
        for name, template in headers.items():
            try:
                value = render(str(template), job.context, limits=self._limits)
            except ExpressionError as exc:
                log.warning("webhook %d of job %s: header %s: %s", index, job.id, name, exc.message.split(":")[0])
                value = ""
            if not _HEADER_NAME.match(str(name)) or _BAD_VALUE.search(value):
                log.warning("webhook %d of job %s: header %s is not a valid HTTP header: left out", index, job.id, name)
                continue
            out[str(name)] = value
        return out
