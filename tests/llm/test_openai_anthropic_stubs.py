"""OpenAI and Anthropic providers against loopback stubs of their REST shapes (base_url)."""

from __future__ import annotations

import pytest
from llm_stubs import (
    Reply,
    StubServer,
    anthropic_response,
    anthropic_sse,
    openai_response,
    openai_sse,
)

from shared.llm import LLMRouter, Message, Prompt
from shared.llm.providers.anthropic_api import AnthropicProvider
from shared.llm.providers.offline import OfflineProvider
from shared.llm.providers.openai_api import OpenAIProvider

PROMPT = Prompt(
    system="Be brief.",
    messages=(Message("user", "hi"), Message("assistant", "hello"), Message("user", "what is a list?")),
)


def router_for(provider: object, name: str, model: str) -> tuple[LLMRouter, list[float]]:
    sleeps: list[float] = []
    router = LLMRouter(
        {name: provider, "offline": OfflineProvider()},
        [name, "offline"],
        {name: {"default": model}},
        timeout_s=2.0,
        sleep=sleeps.append,
    )
    return router, sleeps


@pytest.fixture()
def openai_router(stub_server: StubServer) -> tuple[LLMRouter, list[float]]:
    return router_for(OpenAIProvider("sk-stub", base_url=f"{stub_server.url}/v1"), "openai", "gpt-4.1-mini")


@pytest.fixture()
def anthropic_router(stub_server: StubServer) -> tuple[LLMRouter, list[float]]:
    return router_for(AnthropicProvider("ak-stub", base_url=stub_server.url), "anthropic", "claude-haiku-4-5")


def test_openai_warm_up_builds_the_client_and_sends_nothing(
    stub_server: StubServer, openai_router: tuple[LLMRouter, list[float]]
) -> None:
    router, _ = openai_router
    provider = router.providers["openai"]
    assert provider._client is None  # type: ignore[attr-defined]
    assert router.warm_up("chat") == "openai"
    assert provider._client is not None  # type: ignore[attr-defined]
    assert stub_server.requests == []


def test_openai_generate(stub_server: StubServer, openai_router: tuple[LLMRouter, list[float]]) -> None:
    router, _ = openai_router
    stub_server.push(Reply(body=openai_response("A list is ordered.", tokens_in=20, tokens_out=9)))
    generation = router.generate("chat", PROMPT)
    assert (generation.provider, generation.text, generation.tokens_in, generation.tokens_out) == (
        "openai",
        "A list is ordered.",
        20,
        9,
    )
    assert generation.cost_usd == pytest.approx((20 * 0.40 + 9 * 1.60) / 1e6)
    request = stub_server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-stub"
    assert [m["role"] for m in request.body["messages"]] == ["system", "user", "assistant", "user"]


def test_openai_429_is_retried_and_json_mode_is_requested(
    stub_server: StubServer, openai_router: tuple[LLMRouter, list[float]]
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    router, sleeps = openai_router
    stub_server.push(
        Reply(429, {"error": {"message": "rate limited", "type": "rate_limit"}}),
        Reply(body=openai_response('{"value": 4}')),
    )
    generation = router.generate_json("grading", PROMPT, Answer)
    assert generation.parsed == Answer(value=4) and len(sleeps) == 1
    assert stub_server.requests[1].body["response_format"] == {"type": "json_object"}


def test_openai_stream(stub_server: StubServer, openai_router: tuple[LLMRouter, list[float]]) -> None:
    router, _ = openai_router
    stub_server.push(Reply(sse=openai_sse(["A list ", "is ordered."], tokens_in=21, tokens_out=4)))
    *deltas, final = list(router.stream("chat", PROMPT))
    assert deltas == ["A list ", "is ordered."]
    assert (final.text, final.tokens_in, final.tokens_out) == ("A list is ordered.", 21, 4)
    assert stub_server.requests[0].body["stream"] is True


def test_anthropic_generate(stub_server: StubServer, anthropic_router: tuple[LLMRouter, list[float]]) -> None:
    router, _ = anthropic_router
    stub_server.push(Reply(body=anthropic_response("Ordered items.", tokens_in=15, tokens_out=6)))
    generation = router.generate("chat", PROMPT)
    assert (generation.provider, generation.text, generation.tokens_in, generation.tokens_out) == (
        "anthropic",
        "Ordered items.",
        15,
        6,
    )
    request = stub_server.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "ak-stub" and request.headers["anthropic-version"] == "2023-06-01"
    assert request.body["system"] == "Be brief." and len(request.body["messages"]) == 3


def test_anthropic_overloaded_falls_back(
    stub_server: StubServer, anthropic_router: tuple[LLMRouter, list[float]]
) -> None:
    router, sleeps = anthropic_router
    stub_server.default = Reply(529, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    generation = router.generate("chat", PROMPT)
    assert generation.provider == "offline" and len(stub_server.requests) == 3 and len(sleeps) == 2


def test_anthropic_stream(stub_server: StubServer, anthropic_router: tuple[LLMRouter, list[float]]) -> None:
    router, _ = anthropic_router
    stub_server.push(Reply(sse=anthropic_sse(["Ordered ", "items."], tokens_in=15, tokens_out=3)))
    *deltas, final = list(router.stream("chat", PROMPT))
    assert deltas == ["Ordered ", "items."]
    assert (final.text, final.tokens_in, final.tokens_out) == ("Ordered items.", 15, 3)
