"""The contract every provider meets, and the error classification they share.

A provider is deliberately dumb: one call, one model, no retries, no fallback; those
live once in the router. SDK clients are built lazily so a process that never calls a
provider never imports its SDK.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from shared.llm.errors import ProviderError
from shared.llm.types import Prompt, ProviderResult

#: HTTP statuses worth retrying on the same provider
TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class Provider(Protocol):
    name: str

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult: ...

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        """Text deltas, then exactly one ProviderResult holding the whole text and usage."""
        ...


def is_transient_status(status: int | None) -> bool:
    return status is None or status in TRANSIENT_STATUSES


def check_deadline(provider: str, started: float, timeout_s: float) -> None:
    """A stream may trickle forever under a per-read timeout; this bounds the whole call."""
    if time.monotonic() - started > timeout_s:
        raise ProviderError(provider, f"timed out after {timeout_s:g}s", transient=True)


def require_text(provider: str, text: str | None, finish_reason: str | None, raw: str | None = None) -> str:
    """An empty answer is a failure (blocked, truncated to nothing), never a reply."""
    if not text or not text.strip():
        raise ProviderError(
            provider, f"empty answer (finish reason {finish_reason or 'unknown'})", transient=False, raw_response=raw
        )
    return text
