"""OpenAI chat completions through the official SDK (used only when OPENAI_API_KEY is set).

The same class speaks to any OpenAI-compatible server (see `local_openai.py`). The
module is named openai_api so it never shadows the SDK package it wraps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import Answer, SdkProvider, StreamState, stream_text, translate_stainless
from shared.llm.types import Prompt, ProviderResult


class OpenAIProvider(SdkProvider):
    name = "openai"
    #: the request field that caps the answer; OpenAI's newer name, which local servers may not know
    token_cap_field = "max_completion_tokens"

    def _make_client(self) -> Any:
        import openai

        # max_retries=0: the router owns retries, so every attempt is counted once.
        return openai.OpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0)

    def warm_up(self) -> None:
        """The client and its chat-completions resource (imported on first access)."""
        self.client.chat.completions  # noqa: B018 (the attribute imports the resource)

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

    def _complete(self, model: str, prompt: Prompt, timeout_s: float) -> Answer:
        response = self.client.chat.completions.create(**self._kwargs(model, prompt, timeout_s))
        choice, usage = response.choices[0], response.usage
        return Answer(
            choice.message.content,
            choice.finish_reason,
            getattr(response, "model", None),
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
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
