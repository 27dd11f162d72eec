"""A store outage longer than datastore.retry.timeout: the coordinator gives up by ending its process.

Past the timeout an event cannot be stored (a worker's result, a job's start, a continuation): dropped, it would
leave its task RUNNING until something restarted the coordinator. So the coordinator restarts itself instead:
the process exits, Ray restarts the actor (max_restarts=-1, tork_ray/coordinator/actor.py: start_coordinator),
and the new process recovers from the store like after any restart. Nothing is lost on the way: what was not
stored is done again from the stored state (a task whose result was lost is redelivered by its rules, a PENDING
job started, a scheduled tick fired), and what was stored is never done twice.

The restarted process waits for the store before it builds anything (open_store_when_back): a constructor that
raised would leave a dead actor, which Ray does not restart."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import NoReturn

from tork_ray.settings import Settings
from tork_ray.spec.units import parse_duration
from tork_ray.store.outage import is_outage, reason
from tork_ray.store.store import Store, open_store

log = logging.getLogger(__name__)

# EX_TEMPFAIL (sysexits.h): a temporary failure, try again; Ray restarts the actor whatever the code.
EXIT_CODE = 75


def open_coordinator_store(settings: Settings) -> Store:
    """The coordinator's store: in an actor Ray restarted, waited for (open_store_when_back); else opened at once."""
    return open_store_when_back(settings) if _restarted() else open_store(settings)


def _restarted() -> bool:
    """True in an actor Ray restarted (after a crash, a kill, or a give-up on a store outage)."""
    try:
        import ray

        return ray.is_initialized() and bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # not in an actor (tests make a Coordinator in plain code)
        return False


def give_up_handler() -> Callable[[str, BaseException], None] | None:
    """exit_for_restart in a Ray actor (which Ray restarts); None in plain code (tests, tools), whose process
    nobody would restart: there the write is refused with StoreUnavailable, as before."""
    try:
        import ray

        in_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:
        in_actor = False
    return exit_for_restart if in_actor else None


def exit_for_restart(what: str, exc: BaseException) -> NoReturn:
    """Ends the coordinator's process at once (no clean-up that could touch the store or its tasks): Ray
    restarts the actor, which recovers from the store."""
    log.critical(
        "%s could not be stored: the store stayed out of reach past datastore.retry.timeout (%s); the coordinator "
        "exits so that Ray restarts it and it recovers from the store",
        what,
        reason(exc),
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_CODE)


def open_store_when_back(
    settings: Settings, opener: Callable[[Settings], Store] = open_store, sleep: Callable[[float], None] = time.sleep
) -> Store:
    """open_store, waiting as long as it takes while the store is out of reach (backoff datastore.retry.delay
    doubling up to .max.delay). For a restarted coordinator only: at a first start a store out of reach is a
    wrong setting as likely as an outage, and fails at once with the reason."""
    delay = parse_duration(settings.store_retry.delay)
    most = max(parse_duration(settings.store_retry.max_delay), delay, 0.01)
    tries = 0
    while True:
        try:
            return opener(settings)
        except Exception as exc:
            if not is_outage(exc):
                raise
            tries += 1
            log.warning("restarted coordinator: the store is out of reach (%s), try %d", reason(exc), tries)
            sleep(max(delay, 0.01))
            delay = min(max(delay, 0.01) * 2, most)
