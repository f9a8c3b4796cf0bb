"""Fixtures of the HTTP tests: a real redis-server (tests/redis_server.py)."""

from tests.redis_server import redis_server  # noqa: F401 - a fixture, found by name
