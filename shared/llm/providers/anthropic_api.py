"""Anthropic messages over HTTP (`POST {base}/v1/messages`; used only when
ANTHROPIC_API_KEY is set). No SDK is involved (rest.py says why).

Anthropic has no JSON mode: structured tasks rely on the instruction the router adds
to the system prompt and on the router's repair-or-retry. `temperature` is not sent, as
before (the SDK pinned until session 21 did not take it): the model's default is used.
"""

from __future__ import annotations

from typing import Any

from shared.llm.providers.base import Answer, StreamState
from shared.llm.providers.rest import RestProvider
from shared.llm.types import Prompt

#: where Anthropic's API lives when no base URL is configured
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
#: the API version this module's request and event shapes follow
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(RestProvider):
    name = "anthropic"
    #: Anthropic's "overloaded": worth a retry like a 503
    extra_transient = frozenset({529})

    def _url(self, model: str, *, stream: bool) -> str:
        return f"{self.base_url or ANTHROPIC_BASE_URL}/v1/messages"

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key or "", "anthropic-version": ANTHROPIC_VERSION}

    def _body(self, model: str, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "system": prompt.system,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "max_tokens": prompt.max_output_tokens or self.max_output_tokens,
        }
        if stream:
            body["stream"] = True
        return body

    def _answer(self, body: Any) -> Answer:
        text = "".join(block["text"] for block in body["content"] if block.get("type") == "text")
        usage = body.get("usage") or {}
        return Answer(
            text, body.get("stop_reason"), body.get("model"), usage.get("input_tokens"), usage.get("output_tokens")
        )

    def _delta(self, event: Any, state: StreamState) -> str:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event["delta"]
            return (delta.get("text") or "") if delta.get("type") == "text_delta" else ""
        if kind == "message_start":
            message = event["message"]
            state.model = message.get("model") or state.model
            state.tokens_in = (message.get("usage") or {}).get("input_tokens")
        elif kind == "message_delta":
            state.finish_reason = event["delta"].get("stop_reason") or state.finish_reason
            state.tokens_out = (event.get("usage") or {}).get("output_tokens", state.tokens_out)
        elif kind == "error":  # e.g. overloaded mid-stream: the answer is incomplete
            raise self._event_error(event.get("error"))
        return ""
