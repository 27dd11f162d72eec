"""free_port picks a port outside the ranges the OS and Ray hand out themselves (tork_ray/api/background.py)."""

from __future__ import annotations

import socket

import pytest

from tork_ray.api import background
from tork_ray.api.background import PICK_RANGE, free_port


def test_a_picked_port_is_in_the_range_and_free() -> None:
    for _ in range(20):
        port = free_port()
        assert PICK_RANGE[0] <= port <= PICK_RANGE[1]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free: a server can take it


def test_a_taken_port_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        picks = iter([port, port, port + 1 if port < PICK_RANGE[1] else port - 1])
        monkeypatch.setattr(background.random, "randint", lambda _low, _high: next(picks))
        assert free_port() != port
