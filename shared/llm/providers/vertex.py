"""Gemini on Vertex AI through google-genai (`genai.Client(vertexai=True, ...)`).

Authentication is Application Default Credentials (the function's service account in
the cloud); tests pass a static-token credential and a loopback `base_url`, which the
SDK uses verbatim in front of `v1beta1/projects/<p>/locations/<l>/publishers/google/
models/<m>:generateContent`. The SDK's own retries are off (its default): the router
retries, so attempts are counted and logged in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import StreamState, is_transient_status, require_text, stream_text
from shared.llm.types import Prompt, ProviderResult


class VertexProvider:
    name = "vertex"

    def __init__(
        self,
        project: str,
        location: str,
        *,
        base_url: str | None = None,
        credentials: Any = None,
        client: Any = None,
        max_output_tokens: int = 1024,
    ) -> None:
        self.project = project
        self.location = location
        self.base_url = base_url
        self.credentials = credentials
        self.max_output_tokens = max_output_tokens
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from shared.vertex import vertex_client

            self._client = vertex_client(
                self.project, self.location, base_url=self.base_url, credentials=self.credentials
            )
        return self._client

    def warm_up(self) -> None:
        """Build the client (importing google-genai and its types) before the first call."""
        from google.genai import types  # noqa: F401 (what each request builds its contents from)

        self.client  # noqa: B018 (the property builds it)

    def describe(self) -> dict[str, Any]:
        return {"project": self.project, "location": self.location, "custom_endpoint": bool(self.base_url)}

    # --- requests -------------------------------------------------------------------
    def _request(self, prompt: Prompt, timeout_s: float) -> tuple[list[Any], Any]:
        from google.genai import types

        contents = [
            types.Content(role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)])
            for m in prompt.messages
        ]
        options: dict[str, Any] = {
            "system_instruction": prompt.system,
            "temperature": prompt.temperature,
            "max_output_tokens": prompt.max_output_tokens or self.max_output_tokens,
            "http_options": types.HttpOptions(timeout=max(1, int(timeout_s * 1000))),
        }
        if prompt.json_schema is not None:
            options["response_mime_type"] = "application/json"
            options["response_json_schema"] = prompt.json_schema
        return contents, types.GenerateContentConfig(**options)

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        contents, config = self._request(prompt, timeout_s)
        try:
            response = self.client.models.generate_content(model=model, contents=contents, config=config)
            text, finish = _text_of(response)
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        tokens_in, tokens_out = _usage(response)
        return ProviderResult(
            text=require_text(self.name, text, finish, _dump(response)),
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            finish_reason=finish,
        )

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        contents, config = self._request(prompt, timeout_s)

        def deltas(state: StreamState) -> Iterator[str]:
            for chunk in self.client.models.generate_content_stream(model=model, contents=contents, config=config):
                delta, chunk_finish = _text_of(chunk, allow_empty=True)
                state.finish_reason = chunk_finish or state.finish_reason
                if getattr(chunk, "usage_metadata", None) is not None:
                    state.tokens_in, state.tokens_out = _usage(chunk)
                yield delta

        return stream_text(self.name, model, timeout_s, deltas, translate)


def _text_of(response: Any, *, allow_empty: bool = False) -> tuple[str, str | None]:
    """Concatenated text parts of the first candidate, and its finish reason.

    A body that parsed as JSON but has no candidates (and is not a stream's usage-only
    chunk) is malformed: transient, worth one more try.
    """
    candidates = getattr(response, "candidates", None)
    if not candidates:
        if allow_empty:
            return "", None
        feedback = getattr(response, "prompt_feedback", None)
        if feedback is not None and getattr(feedback, "block_reason", None):
            raise ProviderError("vertex", f"prompt blocked ({feedback.block_reason})", transient=False)
        raise ProviderError("vertex", "malformed response: no candidates", transient=True, raw_response=_dump(response))
    candidate = candidates[0]
    finish = getattr(candidate, "finish_reason", None)
    finish_name = getattr(finish, "name", None) or (str(finish) if finish else None)
    parts = getattr(getattr(candidate, "content", None), "parts", None) or []
    text = "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))
    return text, finish_name


def _usage(response: Any) -> tuple[int | None, int | None]:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return None, None
    # Thinking tokens are billed as output: count them, or the cost estimate is too low.
    out_parts = [meta.candidates_token_count, getattr(meta, "thoughts_token_count", None)]
    tokens_out = sum(p for p in out_parts if p is not None) if any(p is not None for p in out_parts) else None
    return meta.prompt_token_count, tokens_out


def _dump(response: Any) -> str | None:
    try:
        return json.dumps(response.model_dump(mode="json", exclude_none=True))[:20000]
    except (TypeError, ValueError, AttributeError):
        return None


def translate(exc: BaseException) -> ProviderError:
    """google-genai and transport exceptions → ProviderError with the right `transient`."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        message = f"HTTP {exc.code} {exc.status or ''} {(exc.message or '')[:200]}".strip()
        return ProviderError("vertex", message, transient=is_transient_status(exc.code), status=exc.code)
    if isinstance(exc, errors.UnknownApiResponseError):
        return ProviderError("vertex", f"malformed response body: {str(exc)[:200]}", transient=True)
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError("vertex", f"timed out ({name})", transient=True)
    if any(k in name for k in ("Connect", "Network", "RemoteProtocol", "ReadError", "Transport")):
        return ProviderError("vertex", f"connection failed ({name}: {str(exc)[:200]})", transient=True)
    if isinstance(exc, (ValueError, KeyError, AttributeError)):
        # pydantic validation of an unexpected body shape lands here too
        return ProviderError("vertex", f"malformed response ({name}: {str(exc)[:200]})", transient=True)
    return ProviderError("vertex", f"unexpected error ({name}: {str(exc)[:200]})", transient=False)
