"""Fixtures for the LLM tests; the stub servers themselves are in llm_stubs.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from llm_stubs import StubServer, _handler


@pytest.fixture()
def stub_server() -> Iterator[StubServer]:
    """A scripted HTTP server on 127.0.0.1 (random port), stopped after the test."""
    stub = StubServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    server.block_on_close = False
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
