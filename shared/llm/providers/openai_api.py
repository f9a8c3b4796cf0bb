"""OpenAI chat completions through the official SDK (used only when OPENAI_API_KEY is set).

The same class speaks to any OpenAI-compatible server (see `local_openai.py`). The
module is named openai_api so it never shadows the SDK package it wraps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import StreamState, require_text, stream_text, translate_stainless
from shared.llm.types import Prompt, ProviderResult


class OpenAIProvider:
    name = "openai"
    #: the request field that caps the answer; OpenAI's newer name, which local servers may not know
    token_cap_field = "max_completion_tokens"

    def __init__(
        self, api_key: str, *, base_url: str | None = None, client: Any = None, max_output_tokens: int = 1024
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.max_output_tokens = max_output_tokens
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import openai

            # max_retries=0: the router owns retries, so every attempt is counted once.
            self._client = openai.OpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0)
        return self._client

    def describe(self) -> dict[str, Any]:
        return {"custom_endpoint": bool(self.base_url)}

    def _kwargs(self, model: str, prompt: Prompt, timeout_s: float) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": m.role, "content": m.content} for m in prompt.messages]
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": prompt.temperature,
            self.token_cap_field: prompt.max_output_tokens or self.max_output_tokens,
            "timeout": timeout_s,
        }
        if prompt.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        try:
            response = self.client.chat.completions.create(**self._kwargs(model, prompt, timeout_s))
            choice = response.choices[0]
            text, finish = choice.message.content, choice.finish_reason
            usage = response.usage
        except Exception as exc:
            raise self.translate(exc) from exc
        return ProviderResult(
            text=require_text(self.name, text, finish),
            model=getattr(response, "model", None) or model,
            tokens_in=getattr(usage, "prompt_tokens", None),
            tokens_out=getattr(usage, "completion_tokens", None),
            finish_reason=finish,
        )

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        def deltas(state: StreamState) -> Iterator[str]:
            chunks = self.client.chat.completions.create(
                **self._kwargs(model, prompt, timeout_s), stream=True, stream_options={"include_usage": True}
            )
            for chunk in chunks:
                if chunk.usage is not None:
                    state.tokens_in = chunk.usage.prompt_tokens
                    state.tokens_out = chunk.usage.completion_tokens
                if not chunk.choices:
                    continue
                state.finish_reason = chunk.choices[0].finish_reason or state.finish_reason
                yield chunk.choices[0].delta.content or ""

        return stream_text(self.name, model, timeout_s, deltas, self.translate)

    def translate(self, exc: BaseException) -> ProviderError:
        import openai

        return translate_stainless(self.name, openai, exc)
