"""The contract every provider meets, and what the providers share: error classification,
the streaming skeleton, and the error translation of the two Stainless-built SDKs.

A provider is deliberately dumb: one call, one model, no retries, no fallback; those
live once in the router. SDK clients are built lazily so a process that never calls a
provider never imports its SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

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


class SdkProvider:
    """What the key-based SDK providers share: a key, an optional base URL (stubs,
    proxies, local servers), and a client built on the first call (`_make_client`)."""

    name: str

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
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Build the client (importing the SDK) before the first call needs it."""
        self.client  # noqa: B018 (the property builds it)

    def describe(self) -> dict[str, Any]:
        return {"custom_endpoint": bool(self.base_url)}

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        try:
            answer = self._complete(model, prompt, timeout_s)
        except ProviderError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc
        return ProviderResult(
            text=require_text(self.name, answer.text, answer.finish_reason),
            model=answer.model or model,
            tokens_in=answer.tokens_in,
            tokens_out=answer.tokens_out,
            finish_reason=answer.finish_reason,
        )

    def _complete(self, model: str, prompt: Prompt, timeout_s: float) -> Answer:
        """One non-streaming call, read into an Answer (SDK exceptions propagate)."""
        raise NotImplementedError

    def translate(self, exc: BaseException) -> ProviderError:
        raise NotImplementedError


@dataclass(frozen=True)
class Answer:
    """What an SDK's non-streaming answer says, before it is checked (empty text fails)."""

    text: str | None
    finish_reason: str | None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None


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
    """The streaming skeleton every SDK provider shares: yield the SDK's text deltas under a
    bound on the whole call, translate its exceptions once, and end with one ProviderResult
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


def translate_stainless(
    provider: str, sdk: ModuleType, exc: BaseException, extra_transient: frozenset[int] = frozenset()
) -> ProviderError:
    """openai and anthropic exceptions → ProviderError. Both SDKs are generated by Stainless
    and share the exception classes' names and meaning, so one translation serves both
    (and every OpenAI-compatible local server reached through the openai client)."""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(provider, "timed out", transient=True)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(provider, f"connection failed: {str(exc)[:200]}", transient=True)
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        return ProviderError(
            provider,
            f"HTTP {status}: {str(exc)[:200]}",
            transient=status in extra_transient or is_transient_status(status),
            status=status,
        )
    malformed = (sdk.APIResponseValidationError, ValueError, KeyError, AttributeError, IndexError)
    if isinstance(exc, malformed):
        return ProviderError(provider, f"malformed response ({type(exc).__name__}: {str(exc)[:200]})", transient=True)
    return ProviderError(provider, f"unexpected error ({type(exc).__name__}: {str(exc)[:200]})", transient=False)
