"""Local models as router providers: an OpenAI-compatible server (a loopback stub speaking
llama.cpp's / Ollama's `/v1/chat/completions`, streaming included) through the
REST provider, and the in-process GGUF provider's adapter logic with a stand-in `Llama` object
(llama-cpp-python is an optional extra, not installed in CI: see docs/llm.md)."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_stubs import Reply, StubServer, openai_response, openai_sse
from pydantic import BaseModel

from shared.config import Settings
from shared.llm import LLMRouter, Message, Prompt
from shared.llm.errors import ProviderError
from shared.llm.providers.gguf import GGUFProvider
from shared.llm.providers.local_openai import LocalOpenAIProvider
from shared.llm.providers.offline import OfflineProvider
from shared.llm.types import ProviderResult

MODEL = "llama-3.2-1b-instruct-q4_k_m"
PROMPT = Prompt(system="Be brief.", messages=(Message("user", "what is a list?"),), max_output_tokens=64)


def local_router(provider: Any, name: str = "local") -> tuple[LLMRouter, list[float]]:
    sleeps: list[float] = []
    router = LLMRouter(
        {name: provider, "offline": OfflineProvider()},
        [name, "offline"],
        {name: {"default": MODEL}},
        timeout_s=2.0,
        sleep=sleeps.append,
    )
    return router, sleeps


# --- the OpenAI-compatible endpoint ------------------------------------------------------


def test_local_endpoint_generates_free_with_usage(stub_server: StubServer) -> None:
    router, _ = local_router(LocalOpenAIProvider(f"{stub_server.url}/v1"))
    stub_server.push(Reply(body=openai_response("An ordered sequence.", model=MODEL, tokens_in=31, tokens_out=5)))
    generation = router.generate("chat", PROMPT)
    assert (generation.provider, generation.model, generation.text) == ("local", MODEL, "An ordered sequence.")
    assert (generation.tokens_in, generation.tokens_out, generation.cost_usd) == (31, 5, 0.0)
    request = stub_server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert "authorization" not in request.headers  # no key configured: none is sent
    assert request.body["model"] == MODEL and request.body["max_tokens"] == 64
    assert "max_completion_tokens" not in request.body  # local servers read max_tokens
    assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_local_endpoint_streams_with_usage(stub_server: StubServer) -> None:
    router, _ = local_router(LocalOpenAIProvider(f"{stub_server.url}/v1", api_key="sk-local"))
    stub_server.push(Reply(sse=openai_sse(["An ordered ", "sequence."], model=MODEL, tokens_in=30, tokens_out=4)))
    *deltas, final = list(router.stream("chat", PROMPT))
    assert deltas == ["An ordered ", "sequence."]
    assert (final.provider, final.text, final.tokens_in, final.tokens_out, final.cost_usd) == (
        "local",
        "An ordered sequence.",
        30,
        4,
        0.0,
    )
    body = stub_server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert stub_server.requests[0].headers["authorization"] == "Bearer sk-local"


def test_local_server_errors_are_retried_then_fall_back(stub_server: StubServer) -> None:
    router, sleeps = local_router(LocalOpenAIProvider(f"{stub_server.url}/v1"))
    stub_server.default = Reply(503, {"error": {"message": "loading model", "type": "unavailable_error"}})
    generation = router.generate("chat", PROMPT)
    assert generation.provider == "offline" and len(stub_server.requests) == 3 and len(sleeps) == 2
    assert all("local: HTTP 503" in (a.error or "") for a in generation.attempts if a.provider == "local")


def test_local_server_down_falls_back_with_a_connection_error() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    router, _ = local_router(LocalOpenAIProvider(f"http://127.0.0.1:{port}/v1"))
    generation = router.generate("chat", PROMPT)
    assert generation.offline
    assert "local: connection failed" in (generation.attempts[0].error or "")


def test_settings_enable_the_local_endpoint(monkeypatch: pytest.MonkeyPatch, stub_server: StubServer) -> None:
    for var in ("LLM_MODELS", "LOCAL_LLM_API_KEY", "GGUF_MODEL_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LLM_PROVIDERS", "local")
    monkeypatch.delenv("LOCAL_LLM_BASE_URL", raising=False)
    assert LLMRouter.from_settings(Settings()).order == ["offline"]  # no endpoint: left out

    monkeypatch.setenv("LOCAL_LLM_BASE_URL", f"{stub_server.url}/v1")
    monkeypatch.setenv("LOCAL_LLM_MODEL", "llama3.2:1b")
    router = LLMRouter.from_settings(Settings())
    assert router.order == ["local", "offline"] and router.model_for("local", "chat") == "llama3.2:1b"
    stub_server.push(Reply(body=openai_response("Hi.", model="llama3.2:1b")))
    assert router.generate("chat", PROMPT).usage()["cost_usd"] == 0.0
    assert stub_server.requests[0].body["model"] == "llama3.2:1b"
    assert "authorization" not in stub_server.requests[0].headers

    monkeypatch.setenv("LOCAL_LLM_API_KEY", "local-secret")  # e.g. vLLM started with --api-key
    router = LLMRouter.from_settings(Settings())
    stub_server.push(Reply(body=openai_response("Hi.", model="llama3.2:1b")))
    router.generate("chat", PROMPT)
    assert stub_server.requests[1].headers["authorization"] == "Bearer local-secret"


# --- in-process GGUF (adapter logic, with a stand-in for llama_cpp.Llama) ----------------


class FakeLlama:
    """Speaks llama-cpp-python's `create_chat_completion(stream=True)` chunk dicts."""

    def __init__(self, pieces: list[str], *, fail: Exception | None = None, **init: Any) -> None:
        self.pieces, self.fail, self.init = pieces, fail, init
        self.calls: list[dict[str, Any]] = []

    def tokenize(self, data: bytes, add_bos: bool = True) -> list[int]:
        return list(range(len(data.split()) + int(add_bos)))

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(kwargs)
        if self.fail is not None:
            raise self.fail
        for piece in self.pieces:
            yield {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def test_gguf_streams_counts_usage_and_is_free(tmp_path: Path) -> None:
    fake = FakeLlama(["A ", "list ", "is ", "ordered."])
    router, _ = local_router(GGUFProvider(tmp_path / "tiny-q8_0.gguf", llama=fake), "gguf")
    *deltas, final = list(router.stream("chat", PROMPT))
    assert "".join(deltas) == final.text == "A list is ordered."
    assert (final.provider, final.model, final.tokens_out, final.cost_usd) == ("gguf", "tiny-q8_0", 4, 0.0)
    assert final.tokens_in == len(PROMPT.render().encode().split()) + 1
    call = fake.calls[0]
    assert call["stream"] is True and call["max_tokens"] == 64
    assert call["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what is a list?"},
    ]


def test_gguf_generate_and_json_mode_with_schema(tmp_path: Path) -> None:
    class Answer(BaseModel):
        answer: str

    fake = FakeLlama(['{"answer": ', '"ordered"}'])
    router, _ = local_router(GGUFProvider(tmp_path / "m.gguf", llama=fake), "gguf")
    generation = router.generate_json("quiz", PROMPT, Answer)
    assert generation.parsed == Answer(answer="ordered") and generation.provider == "gguf"
    assert fake.calls[0]["response_format"] == {"type": "json_object", "schema": Answer.model_json_schema()}


def test_gguf_failure_is_permanent_and_falls_back(tmp_path: Path) -> None:
    fake = FakeLlama([], fail=ValueError("Requested tokens (5000) exceed context window of 4096"))
    router, sleeps = local_router(GGUFProvider(tmp_path / "m.gguf", llama=fake), "gguf")
    generation = router.generate("chat", PROMPT)
    assert generation.offline and sleeps == [] and len(fake.calls) == 1  # not retried
    assert "exceed context window" in (generation.attempts[0].error or "")


def test_gguf_one_call_at_a_time_then_busy(tmp_path: Path) -> None:
    release = threading.Event()

    class Slow(FakeLlama):
        def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
            release.wait(5)
            yield from super().create_chat_completion(**kwargs)

    provider = GGUFProvider(tmp_path / "m.gguf", llama=Slow(["ok"]))
    first = provider.stream(MODEL, PROMPT, 5.0)
    worker = threading.Thread(target=lambda: list(first))
    worker.start()
    try:
        with pytest.raises(ProviderError, match="busy") as info:
            list(provider.stream(MODEL, PROMPT, 0.2))
        assert info.value.transient
    finally:
        release.set()
        worker.join(5)
    assert isinstance(list(provider.stream(MODEL, PROMPT, 1.0))[-1], ProviderResult)  # the lock was released


def test_gguf_loads_llama_cpp_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = tmp_path / "tiny.gguf"
    provider = GGUFProvider(model_file, n_ctx=512, n_threads=2)
    assert "llama_cpp" not in sys.modules or provider._llama is None  # nothing loaded at construction
    with pytest.raises(ProviderError, match=r"no GGUF file|not installed"):
        _ = provider.llama

    created: list[dict[str, Any]] = []

    def make(**init: Any) -> FakeLlama:
        created.append(init)
        return FakeLlama(["hi"], **init)

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=make))
    with pytest.raises(ProviderError, match="no GGUF file") as info:
        _ = provider.llama
    assert info.value.status == 404  # counts against the provider's health: the breaker opens
    model_file.write_bytes(b"GGUF")
    assert isinstance(provider.llama, FakeLlama)
    assert created == [{"model_path": str(model_file), "n_ctx": 512, "n_threads": 2, "verbose": False}]


def test_settings_enable_gguf_only_with_the_extra_and_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.delenv("LLM_MODELS", raising=False)
    monkeypatch.setenv("LLM_PROVIDERS", "gguf")
    monkeypatch.setenv("GGUF_MODEL_PATH", str(tmp_path / "missing.gguf"))
    assert LLMRouter.from_settings(Settings()).order == ["offline"]

    model_file = tmp_path / "qwen2.5-0.5b-q4_k_m.gguf"
    model_file.write_bytes(b"GGUF")
    monkeypatch.setenv("GGUF_MODEL_PATH", str(model_file))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a)
    )
    assert LLMRouter.from_settings(Settings()).order == ["offline"]  # the extra is missing

    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "llama_cpp" else real_find_spec(name, *a)
    )
    router = LLMRouter.from_settings(Settings())
    assert router.order == ["gguf", "offline"] and router.model_for("gguf", "chat") == "qwen2.5-0.5b-q4_k_m"
