"""Failed-login limits hold for the whole cluster, over real HTTP: two API processes (the test's and one started
beside it, as two Serve replicas are) share one count per client IP and per username, on both stores, and an
API process started afresh (a replica restarted) still refuses."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import ray

from tests.engine import LiveEngine, free_port
from tests.integration.auth_api import AuthApi, auth_api
from tests.polling import poll_until
from tork_ray.api.app import create_app
from tork_ray.api.background import serve_in_thread
from tork_ray.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def api_process(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """Another API process over the same coordinator and store; its URL once it answers."""
    pickled = tmp_path / "settings.pickle"
    pickled.touch(mode=0o600)
    pickled.write_bytes(pickle.dumps(settings))
    port = free_port()
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "tests.integration.api_process", str(pickled), address, str(port)]
    with subprocess.Popen(command, cwd=ROOT, env=os.environ.copy()) as process:
        url = f"http://127.0.0.1:{port}"
        try:

            def answers() -> bool:
                assert process.poll() is None, f"the API process ended with {process.returncode}"
                try:
                    return httpx.get(f"{url}/health", timeout=5).status_code == 200
                except httpx.TransportError:
                    return False

            poll_until(answers, 120, "the second API process to answer", every=0.2)
            yield url
        finally:
            process.kill()


def _from(url: str, ip: str) -> httpx.Client:
    """A client whose connections leave from `ip` (any 127.x address reaches the loopback servers)."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=ip), timeout=60)


def _status(url: str, ip: str, **kwargs: object) -> int:
    with _from(url, ip) as http:
        return http.get("/jobs", **kwargs).status_code  # type: ignore[arg-type]


def test_two_api_processes_share_the_failed_login_limits(live_engine_both: LiveEngine, tmp_path: Path) -> None:
    with auth_api(live_engine_both, failures_limit=3, failures_window="1h") as one:
        settings: Settings = one.app.state.backend.settings
        with api_process(settings, tmp_path) as two:
            _username_limit(one, two)
            _ip_limit(one, two)
            # A replica started afresh (nothing in its memory) reads the same counts.
            with serve_in_thread(create_app(settings, live_engine_both.coordinator, live_engine_both.store)) as three:
                _still_refused(one, three)


def _username_limit(one: AuthApi, two: str) -> None:
    target, password = one.new_user("shared")
    # One failure per IP (no IP bucket runs dry), spread over both processes: the username's bucket does.
    for url, ip in ((one.url, "127.0.2.1"), (two, "127.0.2.2"), (one.url, "127.0.2.3")):
        assert _status(url, ip, auth=(target, "guess")) == 401
    with _from(two, "127.0.2.4") as http:  # the process that saw one failure of three
        refused = http.get("/jobs", auth=(target, password))
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) > 0
    assert _status(two, "127.0.2.4", auth=one.admin) == 200  # another username from that IP is not held


def _ip_limit(one: AuthApi, two: str) -> None:
    ip = "127.0.2.9"
    for url in (one.url, two, one.url):  # three wrong keys from one IP, over both processes
        assert _status(url, ip, headers={"Authorization": "Bearer wrong"}) == 401
    assert _status(two, ip, headers={"Authorization": f"Bearer {one.key}"}) == 429  # the right key waits too
    assert _status(two, ip, auth=one.admin) == 429
    assert _status(two, "127.0.2.10", headers={"Authorization": f"Bearer {one.key}"}) == 200


def _still_refused(one: AuthApi, three: str) -> None:
    assert _status(three, "127.0.2.9", headers={"Authorization": f"Bearer {one.key}"}) == 429
    assert _status(three, "127.0.2.11", headers={"Authorization": f"Bearer {one.key}"}) == 200
