"""A real `redis-server` on a free loopback port that a test can kill and restart on the
same port (what an outage and a recovery look like to a client), for the tests of what
Redis shares between instances (tests/http/test_shared_rate_limits.py). The process
itself is started by `local.loopback.start_redis`, the one home for that.

No silent skip: without redis-server the fixture fails, saying how to install it
(scripts/install_system_packages.sh installs it for CI)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from local.loopback import LoopbackServerError, free_port, start_redis


@dataclass
class RedisServer:
    port: int
    workdir: str
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is required (apt-get install redis-server; scripts/install_system_packages.sh)")
        try:
            self.proc, _ = start_redis(self.workdir, port=self.port)
        except LoopbackServerError as exc:
            raise RuntimeError(f"redis-server did not start: {exc}") from exc

    def stop(self) -> None:
        """Kill it (what an outage looks like to a client): connections drop at once."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tempfile.mkdtemp(prefix="cc-redis-"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
