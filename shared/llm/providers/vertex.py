"""Gemini on Vertex AI over HTTP: `generateContent` and `streamGenerateContent?alt=sse` of
the publisher model (no SDK is involved: rest.py says why; where the endpoint is and how
a call is authorised, Application Default Credentials, is `shared/vertex.py`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.llm.errors import ProviderError
from shared.llm.providers.base import Answer, StreamState
from shared.llm.providers.rest import RestProvider
from shared.llm.types import Prompt
from shared.vertex import NoProjectError, VertexEndpoint


class VertexProvider(RestProvider):
    name = "vertex"

    def __init__(
        self,
        project: str | None,
        location: str,
        *,
        base_url: str | None = None,
        credentials: Any = None,
        max_output_tokens: int = 1024,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url=base_url, max_output_tokens=max_output_tokens, transport=transport)
        self.endpoint = VertexEndpoint(project, location, base_url=base_url, credentials=credentials)

    @property
    def project(self) -> str | None:
        return self.endpoint.project

    @property
    def location(self) -> str:
        return self.endpoint.location

    def warm_up(self) -> None:
        """The HTTP client and the credentials (ADC lookup, first token) before the first call."""
        super().warm_up()
        self.endpoint.headers()

    def describe(self) -> dict[str, Any]:
        return {"project": self.project, "location": self.location, "custom_endpoint": bool(self.base_url)}

    # --- requests -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return self.endpoint.headers()

    def _url(self, model: str, *, stream: bool) -> str:
        try:
            return self.endpoint.model_url(model, "streamGenerateContent?alt=sse" if stream else "generateContent")
        except NoProjectError as exc:
            raise ProviderError(self.name, str(exc), transient=False) from exc

    def _body(self, model: str, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        config: dict[str, Any] = {
            "temperature": prompt.temperature,
            "maxOutputTokens": prompt.max_output_tokens or self.max_output_tokens,
        }
        if prompt.json_schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = prompt.json_schema
        return {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
                for m in prompt.messages
            ],
            "systemInstruction": {"role": "user", "parts": [{"text": prompt.system}]},
            "generationConfig": config,
        }

    # --- answers --------------------------------------------------------------------
    def _answer(self, body: Any) -> Answer:
        text, finish = _text_of(body)
        tokens_in, tokens_out = _usage(body)
        raw = None if text.strip() else json.dumps(body)[:20000]  # kept for a refused answer only
        return Answer(text, finish, None, tokens_in, tokens_out, raw)

    def _delta(self, event: Any, state: StreamState) -> str:
        delta, finish = _text_of(event, allow_empty=True)
        state.finish_reason = finish or state.finish_reason
        if event.get("usageMetadata") is not None:
            state.tokens_in, state.tokens_out = _usage(event)
        return delta


def _text_of(body: Any, *, allow_empty: bool = False) -> tuple[str, str | None]:
    """Concatenated text parts of the first candidate (thoughts left out), and its finish
    reason. A body that parsed as JSON but has no candidates (and is not a stream's
    usage-only chunk) is malformed: transient, worth one more try; a blocked prompt is not."""
    candidates = body.get("candidates")
    if not candidates:
        if allow_empty:
            return "", None
        blocked = (body.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise ProviderError("vertex", f"prompt blocked ({blocked})", transient=False)
        raw = json.dumps(body)[:20000]
        raise ProviderError("vertex", "malformed response: no candidates", transient=True, raw_response=raw)
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(p["text"] for p in parts if p.get("text") and not p.get("thought", False))
    return text, candidate.get("finishReason")


def _usage(body: Any) -> tuple[int | None, int | None]:
    meta = body.get("usageMetadata")
    if meta is None:
        return None, None
    # Thinking tokens are billed as output: count them, or the cost estimate is too low.
    out_parts = [meta.get("candidatesTokenCount"), meta.get("thoughtsTokenCount")]
    present = [p for p in out_parts if p is not None]
    return meta.get("promptTokenCount"), sum(present) if present else None
