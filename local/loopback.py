"""Servers on loopback for tests and benchmarks: a free port, waiting for a child
process to listen, and a throwaway `redis-server` (the shared embedding cache's stand-in
for Memorystore). One home for what the embedding-cache tests, the cache benchmark and
the emulator fixtures all did by hand, and an HTTP stub server for the API stand-ins."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler], *, on_stop: Callable[[], None] | None = None) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 (a random port) in a thread; yields the base URL and
    stops the server when the block ends (`on_stop` first: e.g. release handlers that
    hold a request open). The stubs of the Vertex, OpenAI and Anthropic APIs use it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if on_stop is not None:
            on_stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class LoopbackServerError(RuntimeError):
    """A loopback server could not be started (missing binary, early exit, no port)."""


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, *, timeout_s: float = 10) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`; raise
    LoopbackServerError when `proc` exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise LoopbackServerError(f"the server for port {port} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise LoopbackServerError(f"nothing listened on port {port} within {timeout_s:.0f} s") from None
            time.sleep(0.05)


def start_redis(workdir: str, *args: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A `redis-server` with no persistence in `workdir` on 127.0.0.1 (plain on `port`, or
    on a free one), with `args` appended (TLS, requirepass, ...); (process, port) once it
    listens. With `--port 0` in `args` (TLS only), pass the TLS port as `port`."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LoopbackServerError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    base: Sequence[str] = ("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
    proc = subprocess.Popen(
        [binary, *base, "--dir", workdir, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc)
    except LoopbackServerError:
        proc.kill()
        proc.wait()
        raise
    return proc, port
