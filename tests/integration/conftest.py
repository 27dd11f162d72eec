"""Integration tests share the session engine of tests/conftest.py; these names are kept importable here."""

from tests.engine import QUEUES, LiveEngine, free_port

__all__ = ["QUEUES", "LiveEngine", "free_port"]
