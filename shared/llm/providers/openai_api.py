"""OpenAI chat completions through the official SDK (used only when OPENAI_API_KEY is set).

The module is named openai_api so it never shadows the SDK package it wraps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import check_deadline, is_transient_status, require_text
from shared.llm.types import Prompt, ProviderResult


class OpenAIProvider:
    name = "openai"

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
            "max_completion_tokens": prompt.max_output_tokens or self.max_output_tokens,
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
            raise translate(exc) from exc
        return ProviderResult(
            text=require_text(self.name, text, finish),
            model=getattr(response, "model", None) or model,
            tokens_in=getattr(usage, "prompt_tokens", None),
            tokens_out=getattr(usage, "completion_tokens", None),
            finish_reason=finish,
        )

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        started = time.monotonic()
        pieces: list[str] = []
        usage: Any = None
        finish: str | None = None
        try:
            chunks = self.client.chat.completions.create(
                **self._kwargs(model, prompt, timeout_s), stream=True, stream_options={"include_usage": True}
            )
            for chunk in chunks:
                check_deadline(self.name, started, timeout_s)
                usage = chunk.usage or usage
                if not chunk.choices:
                    continue
                finish = chunk.choices[0].finish_reason or finish
                delta = chunk.choices[0].delta.content
                if delta:
                    pieces.append(delta)
                    yield delta
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        yield ProviderResult(
            text=require_text(self.name, "".join(pieces), finish),
            model=model,
            tokens_in=getattr(usage, "prompt_tokens", None),
            tokens_out=getattr(usage, "completion_tokens", None),
            finish_reason=finish,
        )


def translate(exc: BaseException) -> ProviderError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("openai", "timed out", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("openai", f"connection failed: {str(exc)[:200]}", transient=True)
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(
            "openai",
            f"HTTP {exc.status_code}: {str(exc)[:200]}",
            transient=is_transient_status(exc.status_code),
            status=exc.status_code,
        )
    if isinstance(exc, (openai.APIResponseValidationError, ValueError, KeyError, AttributeError, IndexError)):
        return ProviderError("openai", f"malformed response ({type(exc).__name__}: {str(exc)[:200]})", transient=True)
    return ProviderError("openai", f"unexpected error ({type(exc).__name__}: {str(exc)[:200]})", transient=False)
