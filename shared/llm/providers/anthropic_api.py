"""Anthropic messages through the official SDK (used only when ANTHROPIC_API_KEY is set).

Anthropic has no JSON mode: structured tasks rely on the instruction the router adds
to the system prompt and on the router's repair-or-retry. The SDK pinned here (2.x) no
longer takes `temperature` on messages.create, so Prompt.temperature is not sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import Answer, SdkProvider, StreamState, stream_text, translate_stainless
from shared.llm.types import Prompt, ProviderResult

#: Anthropic's "overloaded": worth a retry like a 503
OVERLOADED = frozenset({529})


class AnthropicProvider(SdkProvider):
    name = "anthropic"

    def _make_client(self) -> Any:
        import anthropic

        # max_retries=0: the router owns retries, so every attempt is counted once.
        return anthropic.Anthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0)

    def _kwargs(self, model: str, prompt: Prompt, timeout_s: float) -> dict[str, Any]:
        return {
            "model": model,
            "system": prompt.system,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "max_tokens": prompt.max_output_tokens or self.max_output_tokens,
            "timeout": timeout_s,
        }

    def _complete(self, model: str, prompt: Prompt, timeout_s: float) -> Answer:
        response = self.client.messages.create(**self._kwargs(model, prompt, timeout_s))
        text = "".join(block.text for block in response.content if getattr(block, "type", "") == "text")
        return Answer(
            text,
            response.stop_reason,
            getattr(response, "model", None),
            getattr(response.usage, "input_tokens", None),
            getattr(response.usage, "output_tokens", None),
        )

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        def deltas(state: StreamState) -> Iterator[str]:
            with self.client.messages.stream(**self._kwargs(model, prompt, timeout_s)) as stream:
                yield from stream.text_stream
                final = stream.get_final_message()
            state.finish_reason = final.stop_reason
            state.tokens_in = getattr(final.usage, "input_tokens", None)
            state.tokens_out = getattr(final.usage, "output_tokens", None)

        return stream_text(self.name, model, timeout_s, deltas, self.translate)

    def translate(self, exc: BaseException) -> ProviderError:
        import anthropic

        return translate_stainless(self.name, anthropic, exc, OVERLOADED)
