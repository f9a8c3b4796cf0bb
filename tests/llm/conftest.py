"""Fixtures for the LLM tests; the stub servers themselves are in llm_stubs.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm_stubs import StubServer, _handler

from local.loopback import serve_http


@pytest.fixture()
def stub_server() -> Iterator[StubServer]:
    """A scripted HTTP server on 127.0.0.1 (random port), stopped after the test."""
    stub = StubServer()
    with serve_http(_handler(stub), on_stop=stub.stopping.set) as url:
        stub.url = url
        yield stub
