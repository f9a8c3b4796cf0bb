"""The router the settings describe: offline-only by default, keys gate the hosted providers."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from shared.llm import LLMRouter, Prompt

_LLM_ENV = (
    "LLM_PROVIDERS",
    "LLM_MODELS",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "LLM_OFFLINE_LAST_RESORT",
    "VERTEX_LLM_LOCATION",
    "VERTEX_BASE_URL",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _LLM_ENV:
        monkeypatch.delenv(var, raising=False)


def test_default_is_offline_only_and_answers() -> None:
    router = LLMRouter.from_settings(Settings())
    assert router.order == ["offline"]
    assert router.generate("chat", Prompt.simple("s", "hi")).offline


def test_hosted_providers_need_their_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDERS", "openai,anthropic,vertex")
    router = LLMRouter.from_settings(Settings())
    assert router.order == ["vertex", "offline"]  # no keys: openai and anthropic are left out

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-test")
    monkeypatch.setenv("LLM_OFFLINE_LAST_RESORT", "false")
    router = LLMRouter.from_settings(Settings())
    assert router.order == ["openai", "anthropic", "vertex"]


def test_unknown_provider_names_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDERS", "bard, offline")
    assert LLMRouter.from_settings(Settings()).order == ["offline"]


def test_models_per_task_with_default_and_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDERS", "vertex")
    monkeypatch.setenv("LLM_MODELS", '{"vertex": {"default": "gemini-2.5-flash", "explanation": "gemini-2.5-pro"}}')
    monkeypatch.setenv("VERTEX_LLM_LOCATION", "global")
    router = LLMRouter.from_settings(Settings())
    assert router.model_for("vertex", "explanation") == "gemini-2.5-pro"
    assert router.model_for("vertex", "chat") == "gemini-2.5-flash"
    assert router.model_for("offline", "chat") == "offline-composer-1"  # not in LLM_MODELS: built in
    assert router.providers["vertex"].location == "global"


def test_describe_reports_chain_and_breakers() -> None:
    info = LLMRouter.from_settings(Settings()).describe()
    assert info["status"] == "ok" and info["chain"] == ["offline"]
    assert info["providers"]["offline"]["breaker"]["state"] == "closed"


def test_no_vendor_sdk_is_imported_to_build_or_warm_a_provider() -> None:
    """The hosted providers speak HTTP themselves (rest.py): neither importing the package
    nor building and warming every hosted provider imports an SDK (0.6-0.75 s of CPU each
    on a cold start), and httpx is what firebase_admin has imported anyway."""
    import subprocess
    import sys

    code = """
import sys, shared.llm
from google.oauth2.credentials import Credentials
from shared.llm.providers.anthropic_api import AnthropicProvider
from shared.llm.providers.local_openai import LocalOpenAIProvider
from shared.llm.providers.openai_api import OpenAIProvider
from shared.llm.providers.vertex import VertexProvider
for provider in (OpenAIProvider("k"), AnthropicProvider("k"), LocalOpenAIProvider("http://127.0.0.1:9/v1"),
                 VertexProvider("p", "europe-west4", credentials=Credentials(token="t"))):
    provider.warm_up()
print([m for m in ("google.genai", "openai", "anthropic") if m in sys.modules])
"""
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"


def test_the_process_router_is_built_once_when_two_threads_ask_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up thread and a first request may both ask for it (shared/warm_up.py)."""
    import threading
    import time

    from shared.llm.router import get_router, reset_router, router_built

    real = LLMRouter.from_settings
    built: list[LLMRouter] = []

    def slow(settings: Settings, **overrides: object) -> LLMRouter:
        time.sleep(0.05)  # both threads are inside get_router before the first one returns
        built.append(real(settings, **overrides))
        return built[-1]

    reset_router()
    monkeypatch.setattr(LLMRouter, "from_settings", staticmethod(slow))
    got: list[LLMRouter] = []
    threads = [threading.Thread(target=lambda: got.append(get_router())) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(built) == 1 and got == [built[0], built[0]] and router_built()
    finally:
        reset_router()
    assert not router_built()
