"""Fault drill: every LLM provider failing or hanging. Chat still answers within the
server-side deadline (LLM_DEADLINE_S, 8 s by default: below the web client's 10 s
offline switch), with the offline composer as the last resort, and says which path
answered (`provider`, `llm`)."""

from __future__ import annotations

import time

import pytest

from shared.llm.errors import ProviderError
from shared.llm.providers.offline import OfflineProvider
from shared.llm.router import LLMRouter, get_router
from shared.llm.types import Message, Prompt


class Hanging:
    """A provider that never answers: it holds the call for its whole timeout (as an
    HTTP client with that timeout would), then times out (transient: retried)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[float] = []

    def generate(self, model, prompt, timeout_s):
        self.calls.append(timeout_s)
        time.sleep(timeout_s)
        raise ProviderError(self.name, f"timed out after {timeout_s:.1f} s", transient=True)

    def stream(self, model, prompt, timeout_s):
        yield from ()
        raise ProviderError(self.name, "timed out", transient=True)


class Failing(Hanging):
    def generate(self, model, prompt, timeout_s):
        self.calls.append(timeout_s)
        raise ProviderError(self.name, "503 from upstream", transient=True, status=503)


def prompt() -> Prompt:
    return Prompt(system="You are a tutor.", messages=(Message("user", "what is a loop?"),))


def test_the_default_deadline_is_below_the_clients_offline_switch(settings):
    assert 0 < settings.llm_deadline_s <= 8.0 < 10.0
    assert LLMRouter.from_settings(settings).deadline_s == settings.llm_deadline_s


@pytest.mark.parametrize("kind", ["hanging", "failing"])
def test_router_answers_from_the_offline_provider_within_the_deadline(kind):
    cls = Hanging if kind == "hanging" else Failing
    slow_a, slow_b = cls("vertex"), cls("openai")
    router = LLMRouter(
        {"vertex": slow_a, "openai": slow_b, "offline": OfflineProvider()},
        ["vertex", "openai", "offline"],
        timeout_s=30.0,
        max_attempts=3,
        retry_initial_s=0.05,
        retry_max_s=0.1,
        deadline_s=1.5,
    )
    t0 = time.monotonic()
    generation = router.generate("chat", prompt())
    elapsed = time.monotonic() - t0
    assert generation.provider == "offline" and generation.text
    assert elapsed < 1.5 + 0.5, elapsed
    assert all(timeout <= 1.5 for timeout in slow_a.calls + slow_b.calls)
    assert [a.provider for a in generation.attempts][-1] == "offline"


def test_chat_over_http_answers_within_the_deadline_and_says_offline(client, bearer, course, monkeypatch):
    router = get_router()  # the process's router, which the chat function uses
    hanging = Hanging("vertex")
    monkeypatch.setitem(router.providers, "vertex", hanging)
    monkeypatch.setitem(router.breakers, "vertex", router.breakers["offline"].__class__(5, 30.0))
    monkeypatch.setattr(router, "order", ["vertex", "offline"])
    monkeypatch.setattr(router, "deadline_s", 2.0)  # the drill's budget; production's is 8 s
    t0 = time.monotonic()
    response = client.post("/api/chat", json={"message": "what is a for loop?"}, headers=bearer("alice"))
    elapsed = time.monotonic() - t0
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["provider"] == "offline" and body["reply"]
    assert hanging.calls, "the hanging provider was tried first"
    assert elapsed < 2.0 + 1.5, elapsed


class HangingStream(Hanging):
    """Streams one delta, then blocks far past any deadline (a half-open connection),
    ignoring its own timeout; released by the test so no thread outlives it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        import threading

        self.release = threading.Event()

    def stream(self, model, prompt, timeout_s):
        self.calls.append(timeout_s)
        yield "A loop "
        self.release.wait(60)
        raise ProviderError(self.name, "timed out", transient=True)


def test_chat_streaming_answers_within_the_deadline_and_says_offline(client, bearer, course, monkeypatch):
    """The SSE path under LLM_DEADLINE_S (issue 12's leftover): a stream that stalls after
    its first delta is reset at the deadline and the offline composer finishes the reply."""
    import json

    router = get_router()
    hanging = HangingStream("vertex")
    monkeypatch.setitem(router.providers, "vertex", hanging)
    monkeypatch.setitem(router.breakers, "vertex", router.breakers["offline"].__class__(5, 30.0))
    monkeypatch.setattr(router, "order", ["vertex", "offline"])
    monkeypatch.setattr(router, "deadline_s", 2.0)
    t0 = time.monotonic()
    try:
        response = client.post(
            "/api/chat",
            json={"message": "what is a for loop?"},
            headers={**bearer("alice"), "Accept": "text/event-stream"},
        )
        assert response.status_code == 200
        events = []
        for block in response.get_data(as_text=True).strip().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines())
            events.append((lines["event"], json.loads(lines["data"])))
        elapsed = time.monotonic() - t0
    finally:
        hanging.release.set()
    names = [e for e, _ in events]
    assert names[0] == "metadata" and names[-1] == "final"
    assert ("delta", {"text": "A loop "}) in events and "reset" in names
    final = events[-1][1]
    assert final["provider"] == "offline" and final["reply"]
    assert elapsed < 30, elapsed  # the stall lasts 60 s: the deadline, not the stall, ended it
