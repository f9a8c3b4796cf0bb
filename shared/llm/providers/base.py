"""The contract every provider meets, and what the providers share: the transient
statuses, the bound on a whole stream and the streaming skeleton, the check that an
answer has text.

A provider is deliberately dumb: one call, one model, no retries, no fallback; those
live once in the router. The hosted providers speak HTTP through `rest.py`; the
in-process GGUF model imports llama-cpp-python on first use only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Answer:
    """What a non-streaming answer says, before it is checked (empty text fails)."""

    text: str | None
    finish_reason: str | None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    #: the body as received, kept in the generation log when the answer is refused
    raw: str | None = None


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


@dataclass
class StreamState:
    """What a provider's delta reader learns on the way (usage, finish reason, model):
    filled in while streaming, read once the stream has ended."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str | None = None
    model: str | None = None


def stream_text(
    provider: str,
    model: str,
    timeout_s: float,
    deltas: Callable[[StreamState], Iterator[str]],
    translate: Callable[[BaseException], ProviderError],
) -> Iterator[str | ProviderResult]:
    """The streaming skeleton every provider shares: yield the text deltas under a bound
    on the whole call, translate its exceptions once, and end with one ProviderResult
    holding the complete text and the usage the reader recorded in its StreamState."""
    started = time.monotonic()
    state = StreamState()
    pieces: list[str] = []
    try:
        for delta in deltas(state):
            check_deadline(provider, started, timeout_s)
            if delta:
                pieces.append(delta)
                yield delta
    except ProviderError:
        raise
    except Exception as exc:
        raise translate(exc) from exc
    yield ProviderResult(
        text=require_text(provider, "".join(pieces), state.finish_reason),
        model=state.model or model,
        tokens_in=state.tokens_in,
        tokens_out=state.tokens_out,
        finish_reason=state.finish_reason,
    )
