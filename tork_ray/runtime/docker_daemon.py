"""The Docker engine going away (a restart, an upgrade): told apart from a task's own failure, waited for before
a task starts, and what it left removed once it is back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import docker
import requests
from docker.errors import DockerException

from tork_ray.errors import RuntimeFailure
from tork_ray.runtime.waiting import Deadline

log = logging.getLogger(__name__)

# A task that starts while the engine restarts waits this long for it (a restart takes seconds) before failing.
DAEMON_WAIT_SECONDS = 60.0
# After a container ends by SIGKILL/SIGTERM: how long to look whether the engine is stopping (it stops its
# containers first, then closes its socket: measured well under a second here).
STOPPING_WINDOW_SECONDS = 1.5
# What a removal the engine could not take is tried again for, once it is back.
REMOVE_LATER_SECONDS = 600.0
POLL_SECONDS = 0.1
KILLED = (137, 143)  # 128 + SIGKILL, 128 + SIGTERM: how the engine's stop ends a container


class DockerGone(RuntimeFailure):
    """The Docker engine could not be reached, or stopped while the task ran: not the task's doing."""


def daemon_gone(exc: BaseException) -> bool:
    """True when `exc` says the engine's socket does not answer (refused, missing, cut off), not that a call
    was slow (a read timeout is how a wait in short slices says "still running")."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "ReadTimeoutError" not in str(exc) and "Read timed out" not in str(exc)
    # The SDK's own wrapper when it cannot even open the socket (from_env, a client made while it is down).
    return isinstance(exc, DockerException) and "Error while fetching server API version" in str(exc)


def gone_error(exc: BaseException, when: str) -> DockerGone:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return DockerGone(
        f"the Docker engine is unreachable {when} (stopped or restarting?): {type(exc).__name__}: {first}"
    )


def answers(client: docker.DockerClient) -> BaseException | None:
    """None when the engine answers a ping on a new connection; the error otherwise. A stopping engine unlinks
    its socket first and serves the connections it has until it exits: a pooled one would say it is there."""
    try:
        client.api.close()  # drops the idle pooled connections; the client makes new ones as it needs them
        client.ping()
    except (requests.exceptions.RequestException, DockerException) as exc:
        return exc
    return None


def wait_for_daemon(client: docker.DockerClient, deadline: Deadline, limit: float = DAEMON_WAIT_SECONDS) -> None:
    """Returns once the engine answers; raises DockerGone after `limit` s (the task's timeout and a cancel
    still get in meanwhile)."""
    give_up = time.monotonic() + limit
    while (error := answers(client)) is not None:
        if not daemon_gone(error) or time.monotonic() >= give_up:
            raise gone_error(error, f"(waited {limit:g}s for it)")
        deadline.check()
        time.sleep(POLL_SECONDS)


def stopped_by_daemon(client: docker.DockerClient, exit_code: int, window: float = STOPPING_WINDOW_SECONDS) -> bool:
    """Whether a container that ended with `exit_code` was stopped by its engine shutting down: a kill's exit
    code, and the engine's socket goes within `window` s."""
    if exit_code not in KILLED:
        return False
    until = time.monotonic() + window
    while time.monotonic() < until:
        error = answers(client)
        if error is not None:
            return daemon_gone(error)
        time.sleep(POLL_SECONDS)
    return False


def remove_later(remove: Callable[[], bool], what: str, limit: float = REMOVE_LATER_SECONDS) -> threading.Thread:
    """Runs `remove` on a thread, every 0.5 s until it says all is gone, for up to `limit` s: the engine keeps a
    container it stopped across its restart, and nobody else would remove it before the next engine start."""

    def attempt() -> None:
        give_up = time.monotonic() + limit
        while not remove():
            if time.monotonic() >= give_up:
                log.warning("leftovers of %s not removed: the Docker engine did not come back", what)
                return
            time.sleep(0.5)
        log.info("leftovers of %s removed once the Docker engine was back", what)

    thread = threading.Thread(target=attempt, name="tork-docker-remove-later", daemon=True)
    thread.start()
    return thread
