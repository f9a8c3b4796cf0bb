"""OpenAI chat completions over HTTP (`POST {base}/chat/completions`; used only when
OPENAI_API_KEY is set).

The same class speaks to any OpenAI-compatible server (see `local_openai.py`): the base
URL is OpenAI's unless one is given (a proxy, a stub, llama-server, Ollama, vLLM). The
module is named openai_api after the API it speaks; no SDK is involved (rest.py says why).
"""

from __future__ import annotations

from typing import Any

from shared.llm.providers.base import Answer, StreamState
from shared.llm.providers.rest import RestProvider
from shared.llm.types import Prompt

#: where OpenAI's API lives when no base URL is configured
OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(RestProvider):
    name = "openai"
    #: the request field that caps the answer; OpenAI's newer name, which local servers may not know
    token_cap_field = "max_completion_tokens"

    def _url(self, model: str, *, stream: bool) -> str:
        return f"{self.base_url or OPENAI_BASE_URL}/chat/completions"

    def _headers(self) -> dict[str, str]:
        """The key as a bearer token; none at all to a local server that needs no key."""
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _body(self, model: str, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": m.role, "content": m.content} for m in prompt.messages]
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": prompt.temperature,
            self.token_cap_field: prompt.max_output_tokens or self.max_output_tokens,
        }
        if prompt.json_schema is not None:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}  # usage arrives in a last, choice-less chunk
        return body

    def _answer(self, body: Any) -> Answer:
        choice, usage = body["choices"][0], body.get("usage") or {}
        return Answer(
            choice["message"].get("content"),
            choice.get("finish_reason"),
            body.get("model"),
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
        )

    def _delta(self, event: Any, state: StreamState) -> str:
        if event.get("error"):  # some servers report a failure inside the stream
            raise self._event_error(event["error"])
        usage = event.get("usage")
        if usage:
            state.tokens_in = usage.get("prompt_tokens")
            state.tokens_out = usage.get("completion_tokens")
        state.model = event.get("model") or state.model
        if not event.get("choices"):
            return ""
        choice = event["choices"][0]
        state.finish_reason = choice.get("finish_reason") or state.finish_reason
        return (choice.get("delta") or {}).get("content") or ""
