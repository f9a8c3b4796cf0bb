"""The streaming path under LLM_DEADLINE_S (issue 12's leftover): a provider that hangs
before its first delta, stalls mid-stream or trickles is given up on at the deadline,
whatever its own timeouts do, and the next provider (here the offline composer) answers.

The bounds asserted are functional (the hang lasts 20 s, the answer must come long
before), not speed measurements."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.llm import LLMRouter, Message, Prompt, StreamReset
from shared.llm.providers.offline import OfflineProvider
from shared.llm.types import Generation, ProviderResult

PROMPT = Prompt(system="Be brief.", messages=(Message("user", "what is a loop?"),))
HANG_S = 20.0


class Stalling:
    """Streams `before` deltas, then blocks for HANG_S (ignoring its timeout, as a buggy
    SDK or a half-open connection would) unless the test releases it."""

    def __init__(self, before: list[str], *, trickle_s: float | None = None) -> None:
        self.name = "vertex"
        self.before, self.trickle_s = before, trickle_s
        self.release = threading.Event()
        self.closed = threading.Event()

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        raise AssertionError("the streaming test calls stream() only")

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        try:
            yield from self.before
            if self.trickle_s is not None:
                while not self.release.wait(self.trickle_s):
                    yield "."
            else:
                self.release.wait(HANG_S)
            yield ProviderResult("late", model)
        finally:
            self.closed.set()


@pytest.fixture()
def make_router() -> Iterator[Any]:
    made: list[Stalling] = []

    def make(provider: Stalling, deadline_s: float | None = 1.0) -> LLMRouter:
        made.append(provider)
        return LLMRouter(
            {"vertex": provider, "offline": OfflineProvider()},
            ["vertex", "offline"],
            timeout_s=30.0,
            max_attempts=3,
            retry_initial_s=0.05,
            retry_max_s=0.1,
            deadline_s=deadline_s,
        )

    yield make
    for provider in made:  # never leave a worker thread behind
        provider.release.set()
        assert provider.closed.wait(5), "the provider's stream was not closed"


def run(router: LLMRouter) -> tuple[list[Any], float]:
    t0 = time.monotonic()
    items = list(router.stream("chat", PROMPT))
    return items, time.monotonic() - t0


def test_a_stream_hanging_before_its_first_delta_falls_back_at_the_deadline(make_router: Any) -> None:
    provider = Stalling([])
    items, elapsed = run(make_router(provider))
    final = items[-1]
    assert isinstance(final, Generation) and final.offline and final.text
    assert not any(isinstance(i, StreamReset) for i in items)  # nothing was shown: no reset needed
    assert elapsed < HANG_S / 4, elapsed
    errors = [a.error for a in final.attempts if a.provider == "vertex"]
    assert errors and "no answer before the deadline" in (errors[0] or "")


def test_a_stream_stalling_mid_way_resets_and_the_offline_composer_answers(make_router: Any) -> None:
    provider = Stalling(["A loop ", "repeats "])
    items, elapsed = run(make_router(provider))
    assert items[:2] == ["A loop ", "repeats "]
    assert isinstance(items[2], StreamReset) and items[2].failed_provider == "vertex"
    final = items[-1]
    assert isinstance(final, Generation) and final.offline
    assert "".join(i for i in items[3:] if isinstance(i, str)) == final.text
    assert elapsed < HANG_S / 4, elapsed


def test_a_trickling_stream_is_cut_at_the_deadline(make_router: Any) -> None:
    provider = Stalling(["A loop"], trickle_s=0.1)  # a delta every 0.1 s, for ever
    items, elapsed = run(make_router(provider, deadline_s=1.0))
    assert any(isinstance(i, StreamReset) for i in items)
    assert isinstance(items[-1], Generation) and items[-1].offline
    assert elapsed < HANG_S / 4, elapsed


def test_a_healthy_stream_is_passed_through_unchanged(make_router: Any) -> None:
    provider = Stalling(["A loop ", "repeats."])
    provider.release.set()  # no stall: the stream ends with its result
    items, _ = run(make_router(provider))
    assert items[:2] == ["A loop ", "repeats."]
    assert isinstance(items[-1], Generation) and items[-1].provider == "vertex" and items[-1].text == "late"
