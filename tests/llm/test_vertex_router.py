"""The router on the Vertex path, against a loopback stub speaking generateContent.

The provider is pointed at the stub through its base_url and authenticates with a
static-token credential, so it builds the real URL, headers and body and parses real
response shapes (the REST API's camelCase, as google-genai's Vertex mode sees them), with
no network and no ADC lookup.
"""

from __future__ import annotations

import pytest
from google.oauth2.credentials import Credentials
from llm_stubs import Reply, StubServer, gemini_response, gemini_sse, google_error
from pydantic import BaseModel

from shared.llm import Grounding, LLMRouter, LLMUnavailableError, Prompt, Source, StreamReset, StructuredOutputError
from shared.llm.providers.offline import BANNER, OfflineProvider
from shared.llm.providers.vertex import VertexProvider

PROJECT, LOCATION, MODEL = "stub-project", "europe-west4", "gemini-2.5-flash"
SOURCE = Source("py-lists-1", "Lists", "A list holds items in order; lst.append(x) adds x at the end.")
PROMPT = Prompt.simple(
    "You are a tutor.",
    "How do I add to a list?",
    grounding=Grounding("concept_explanation", "How do I add to a list?", (SOURCE,)),
)
GENERATE_PATH = f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}:generateContent"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_router(
    stub: StubServer, *, offline: bool = True, clock: FakeClock | None = None, **kw: object
) -> tuple[LLMRouter, list[float]]:
    sleeps: list[float] = []
    providers = {
        "vertex": VertexProvider(PROJECT, LOCATION, base_url=stub.url, credentials=Credentials(token="stub-token"))
    }
    if offline:
        providers["offline"] = OfflineProvider()
    options = {"timeout_s": 2.0, "max_attempts": 3, "breaker_failures": 5, "breaker_cooldown_s": 30.0, **kw}
    router = LLMRouter(
        providers,
        list(providers),
        {"vertex": {"default": MODEL}},
        sleep=sleeps.append,
        clock=clock or FakeClock(),
        **options,
    )
    return router, sleeps


def test_warm_up_builds_the_client_and_sends_nothing(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    assert router.warm_up("chat") == "vertex"
    assert router.providers["vertex"]._client is not None  # type: ignore[attr-defined]
    assert stub_server.requests == []
    stub_server.push(Reply(body=gemini_response("Use lst.append(x).", tokens_in=40, tokens_out=10)))
    assert router.generate("chat", PROMPT).text == "Use lst.append(x)."  # the warmed client answers


def test_generate_sends_the_real_request_and_reads_usage(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    stub_server.push(Reply(body=gemini_response("Use lst.append(x).", tokens_in=40, tokens_out=10)))
    generation = router.generate("chat", PROMPT)

    assert (generation.provider, generation.model, generation.text) == ("vertex", MODEL, "Use lst.append(x).")
    assert (generation.tokens_in, generation.tokens_out) == (40, 10)
    assert generation.cost_usd == pytest.approx((40 * 0.30 + 10 * 2.50) / 1e6)
    assert generation.status == "ok" and not generation.offline
    request = stub_server.requests[0]
    assert request.path == GENERATE_PATH
    assert request.headers["authorization"] == "Bearer stub-token"
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": "How do I add to a list?"}]}]
    assert request.body["systemInstruction"]["parts"][0]["text"] == "You are a tutor."


def test_per_task_model_selection_reaches_the_url(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    router.models["vertex"]["quiz"] = "gemini-2.5-flash-lite"
    stub_server.push(Reply(body=gemini_response("ok")))
    assert router.generate("quiz", PROMPT).model == "gemini-2.5-flash-lite"
    assert stub_server.requests[0].path.endswith("/models/gemini-2.5-flash-lite:generateContent")


@pytest.mark.parametrize(
    "failure",
    [
        Reply(429, google_error(429, "RESOURCE_EXHAUSTED")),
        Reply(500, google_error(500, "INTERNAL")),
        Reply(503, google_error(503, "UNAVAILABLE")),
        Reply(200, "this is not JSON"),
        Reply(200, {"unexpected": "shape"}),
        Reply(200, gemini_response("late"), delay_s=5.0),  # beyond the 0.5 s timeout
    ],
    ids=["429", "500", "503", "malformed-body", "no-candidates", "timeout"],
)
def test_transient_errors_are_retried_with_backoff(stub_server: StubServer, failure: Reply) -> None:
    router, sleeps = make_router(stub_server, timeout_s=0.5)
    stub_server.push(failure, Reply(body=gemini_response("second time lucky")))
    generation = router.generate("chat", PROMPT)

    assert generation.provider == "vertex" and generation.text == "second time lucky"
    assert [a.status for a in generation.attempts] == ["error", "ok"]
    assert generation.attempts[0].error
    assert len(sleeps) == 1 and sleeps[0] > 0
    assert len(stub_server.requests) == 2


def test_persistent_outage_falls_back_to_offline(stub_server: StubServer) -> None:
    router, sleeps = make_router(stub_server)
    stub_server.default = Reply(500, google_error(500, "INTERNAL"))
    generation = router.generate("chat", PROMPT)

    assert generation.provider == "offline" and generation.offline
    assert generation.text.startswith(BANNER) and "[py-lists-1]" in generation.text
    assert generation.status == "fallback" and generation.fallbacks == 1
    assert [a.status for a in generation.attempts] == ["error", "error", "error", "ok"]
    assert len(stub_server.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("status,name", [(400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND")])
def test_permanent_errors_fall_back_without_retrying(stub_server: StubServer, status: int, name: str) -> None:
    router, sleeps = make_router(stub_server)
    stub_server.push(Reply(status, google_error(status, name)))
    generation = router.generate("chat", PROMPT)
    assert generation.provider == "offline"
    assert len(stub_server.requests) == 1 and sleeps == []
    assert f"HTTP {status}" in generation.attempts[0].error


def test_a_safety_block_is_not_a_reply(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    blocked = {"candidates": [{"finishReason": "SAFETY", "content": {"role": "model", "parts": []}}]}
    stub_server.push(Reply(body=blocked))
    generation = router.generate("chat", PROMPT)
    assert generation.provider == "offline"
    assert "empty answer" in generation.attempts[0].error


def test_without_a_fallback_the_error_is_clear(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server, offline=False)
    stub_server.default = Reply(429, google_error(429, "RESOURCE_EXHAUSTED"))
    with pytest.raises(LLMUnavailableError) as info:
        router.generate("chat", PROMPT)
    assert "HTTP 429" in str(info.value)
    assert [a.status for a in info.value.attempts] == ["error"] * 3


def test_breaker_opens_after_n_failures_and_half_opens_after_cooldown(stub_server: StubServer) -> None:
    clock = FakeClock()
    router, _ = make_router(stub_server, clock=clock, max_attempts=1, breaker_failures=3, breaker_cooldown_s=60)
    stub_server.default = Reply(503, google_error(503, "UNAVAILABLE"))
    for _ in range(3):
        assert router.generate("chat", PROMPT).provider == "offline"
    assert router.breakers["vertex"].state == "open" and len(stub_server.requests) == 3

    # Open: vertex is skipped without a request.
    generation = router.generate("chat", PROMPT)
    assert generation.attempts[0].status == "skipped" and len(stub_server.requests) == 3
    assert router.describe()["providers"]["vertex"]["breaker"]["state"] == "open"

    # Cool-down elapsed: one trial call; it fails, so the breaker re-opens.
    clock.now += 61
    assert router.breakers["vertex"].state == "half_open"
    router.generate("chat", PROMPT)
    assert len(stub_server.requests) == 4 and router.breakers["vertex"].state == "open"

    # Next cool-down: the trial succeeds and closes the breaker.
    clock.now += 61
    stub_server.push(Reply(body=gemini_response("back")))
    assert router.generate("chat", PROMPT).provider == "vertex"
    assert router.breakers["vertex"].state == "closed"


def test_stream_yields_deltas_then_the_generation(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    stub_server.push(Reply(sse=gemini_sse(["Use ", "lst.append", "(x)."], tokens_in=30, tokens_out=5)))
    items = list(router.stream("chat", PROMPT))
    *deltas, final = items
    assert deltas == ["Use ", "lst.append", "(x)."]
    assert final.text == "Use lst.append(x)." and (final.tokens_in, final.tokens_out) == (30, 5)
    assert stub_server.requests[0].path.endswith(f"/models/{MODEL}:streamGenerateContent?alt=sse")


def test_stream_retries_invisibly_before_the_first_delta(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    stub_server.push(Reply(429, google_error(429, "RESOURCE_EXHAUSTED")), Reply(sse=gemini_sse(["fine"])))
    items = list(router.stream("chat", PROMPT))
    assert items[0] == "fine" and items[-1].provider == "vertex"
    assert not any(isinstance(i, StreamReset) for i in items)


def test_stream_cut_midway_resets_and_falls_back(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    frames = gemini_sse(["one ", "two ", "three"])
    stub_server.push(Reply(sse=[*frames[:2], "data: {not json"]))
    items = list(router.stream("chat", PROMPT))
    resets = [i for i in items if isinstance(i, StreamReset)]
    assert items[:2] == ["one ", "two "]
    assert len(resets) == 1 and resets[0].failed_provider == "vertex"
    final = items[-1]
    assert final.provider == "offline" and final.status == "fallback"
    after_reset = items[items.index(resets[0]) + 1 : -1]
    assert "".join(after_reset) == final.text


class Quiz(BaseModel):
    question: str
    options: list[str]
    answer: int


QUIZ = {"question": "What does append do?", "options": ["adds at end", "sorts"], "answer": 0}


def test_json_in_code_fences_is_repaired(stub_server: StubServer) -> None:
    import json

    router, _ = make_router(stub_server)
    stub_server.push(Reply(body=gemini_response(f"Sure! Here it is:\n```json\n{json.dumps(QUIZ)}\n```")))
    generation = router.generate_json("quiz", PROMPT, Quiz)
    assert generation.parsed == Quiz(**QUIZ)
    body = stub_server.requests[0].body
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert "responseJsonSchema" in body["generationConfig"]


def test_invalid_json_is_retried_with_the_error_then_accepted(stub_server: StubServer) -> None:
    import json

    router, _ = make_router(stub_server)
    stub_server.push(
        Reply(body=gemini_response('{"question": "q", "options": "not a list"}')),
        Reply(body=gemini_response(json.dumps(QUIZ))),
    )
    generation = router.generate_json("quiz", PROMPT, Quiz)
    assert generation.parsed.answer == 0
    assert [a.status for a in generation.attempts] == ["error", "ok"]
    retry_contents = stub_server.requests[1].body["contents"]
    assert retry_contents[-1]["role"] == "user" and "rejected" in retry_contents[-1]["parts"][0]["text"]
    assert generation.tokens_in == 24  # both calls were paid for


def test_malformed_json_is_never_passed_through(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server, json_attempts=2)
    stub_server.default = Reply(body=gemini_response("I would rather not answer in JSON."))
    with pytest.raises(StructuredOutputError) as info:
        router.generate_json("quiz", PROMPT, Quiz)  # offline has no prepared quiz either
    statuses = [a.status for a in info.value.attempts]
    assert statuses.count("error") == 3  # two rejected vertex answers, one offline refusal
    assert len(stub_server.requests) == 2


def test_offline_serves_a_prepared_structured_answer_when_vertex_is_down(stub_server: StubServer) -> None:
    from dataclasses import replace

    router, _ = make_router(stub_server)
    stub_server.default = Reply(500, google_error(500, "INTERNAL"))
    generation = router.generate_json("quiz", replace(PROMPT, offline_json=QUIZ), Quiz)
    assert generation.provider == "offline" and generation.parsed == Quiz(**QUIZ)


def test_thinking_tokens_are_billed_as_output(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    body = gemini_response("ok", tokens_in=100, tokens_out=10)
    body["usageMetadata"]["thoughtsTokenCount"] = 50
    stub_server.push(Reply(body=body))
    generation = router.generate("chat", PROMPT)
    assert (generation.tokens_in, generation.tokens_out) == (100, 60)
    assert generation.cost_usd == pytest.approx((100 * 0.30 + 60 * 2.50) / 1e6)


def test_stream_timeout_before_first_delta_is_retried(stub_server: StubServer) -> None:
    router, sleeps = make_router(stub_server, timeout_s=0.5)
    stub_server.push(Reply(sse=gemini_sse(["late"]), delay_s=5.0), Reply(sse=gemini_sse(["on ", "time"])))
    *deltas, final = list(router.stream("chat", PROMPT))
    assert deltas == ["on ", "time"] and final.provider == "vertex"
    assert [a.status for a in final.attempts] == ["error", "ok"] and "timed out" in final.attempts[0].error
    assert len(sleeps) == 1


def test_a_client_that_stops_reading_early_leaves_the_router_healthy(stub_server: StubServer) -> None:
    router, _ = make_router(stub_server)
    stub_server.push(Reply(sse=gemini_sse(["a", "b", "c"])), Reply(body=gemini_response("next")))
    stream = router.stream("chat", PROMPT)
    assert next(stream) == "a"
    stream.close()  # e.g. the browser went away mid-answer
    assert router.breakers["vertex"].state == "closed"
    assert router.generate("chat", PROMPT).text == "next"


def test_an_abandoned_half_open_trial_does_not_wedge_the_breaker(stub_server: StubServer) -> None:
    clock = FakeClock()
    router, _ = make_router(stub_server, clock=clock, max_attempts=1, breaker_failures=1, breaker_cooldown_s=10)
    stub_server.push(
        Reply(503, google_error(503, "UNAVAILABLE")),
        Reply(sse=gemini_sse(["a", "b"])),
        Reply(body=gemini_response("recovered")),
    )
    router.generate("chat", PROMPT)
    clock.now += 11
    stream = router.stream("chat", PROMPT)
    assert next(stream) == "a"
    stream.close()
    assert router.generate("chat", PROMPT).provider == "vertex"
