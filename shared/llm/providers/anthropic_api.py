"""Anthropic messages through the official SDK (used only when ANTHROPIC_API_KEY is set).

Anthropic has no JSON mode: structured tasks rely on the instruction the router adds
to the system prompt and on the router's repair-or-retry. The SDK pinned here (2.x) no
longer takes `temperature` on messages.create, so Prompt.temperature is not sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.providers.base import check_deadline, is_transient_status, require_text
from shared.llm.types import Prompt, ProviderResult


class AnthropicProvider:
    name = "anthropic"

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
            import anthropic

            self._client = anthropic.Anthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0)
        return self._client

    def describe(self) -> dict[str, Any]:
        return {"custom_endpoint": bool(self.base_url)}

    def _kwargs(self, model: str, prompt: Prompt, timeout_s: float) -> dict[str, Any]:
        return {
            "model": model,
            "system": prompt.system,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "max_tokens": prompt.max_output_tokens or self.max_output_tokens,
            "timeout": timeout_s,
        }

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        try:
            response = self.client.messages.create(**self._kwargs(model, prompt, timeout_s))
            text = "".join(block.text for block in response.content if getattr(block, "type", "") == "text")
            finish = response.stop_reason
            usage = response.usage
        except Exception as exc:
            raise translate(exc) from exc
        return ProviderResult(
            text=require_text(self.name, text, finish),
            model=getattr(response, "model", None) or model,
            tokens_in=getattr(usage, "input_tokens", None),
            tokens_out=getattr(usage, "output_tokens", None),
            finish_reason=finish,
        )

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        started = time.monotonic()
        pieces: list[str] = []
        try:
            with self.client.messages.stream(**self._kwargs(model, prompt, timeout_s)) as stream:
                for delta in stream.text_stream:
                    check_deadline(self.name, started, timeout_s)
                    if delta:
                        pieces.append(delta)
                        yield delta
                final = stream.get_final_message()
        except ProviderError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        usage = final.usage
        yield ProviderResult(
            text=require_text(self.name, "".join(pieces), final.stop_reason),
            model=model,
            tokens_in=getattr(usage, "input_tokens", None),
            tokens_out=getattr(usage, "output_tokens", None),
            finish_reason=final.stop_reason,
        )


def translate(exc: BaseException) -> ProviderError:
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError("anthropic", "timed out", transient=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError("anthropic", f"connection failed: {str(exc)[:200]}", transient=True)
    if isinstance(exc, anthropic.APIStatusError):
        # 529 is Anthropic's "overloaded"
        status = exc.status_code
        return ProviderError(
            "anthropic",
            f"HTTP {status}: {str(exc)[:200]}",
            transient=status == 529 or is_transient_status(status),
            status=status,
        )
    if isinstance(exc, (anthropic.APIResponseValidationError, ValueError, KeyError, AttributeError)):
        return ProviderError(
            "anthropic", f"malformed response ({type(exc).__name__}: {str(exc)[:200]})", transient=True
        )
    return ProviderError("anthropic", f"unexpected error ({type(exc).__name__}: {str(exc)[:200]})", transient=False)
