"""Errors of the LLM layer, classified once so retry, breaker and fallback agree.

Every transport or library exception is translated into ProviderError at the provider
boundary (rest.py for the hosted ones); the router never inspects another exception type,
so adding a provider touches one file.
"""

from __future__ import annotations

from shared.errors import UnavailableError
from shared.llm.types import Attempt


class LLMError(Exception):
    """Base of the router's errors."""


class ProviderError(LLMError):
    """One provider call failed.

    `transient` errors (429, 5xx, timeouts, connection resets, unparsable bodies) are
    worth retrying on the same provider; the others (bad request, auth, unknown model)
    go straight to the next provider.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        raw_response: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.transient = transient
        self.status = status
        self.raw_response = raw_response


class LLMUnavailableError(LLMError, UnavailableError):
    """Every provider in the chain failed or was skipped: the caller answers with an error
    (a domain `UnavailableError`: 503 with Retry-After). `str()` says what each provider
    did, for the logs; the client is told only `public_message`."""

    code = "llm_unavailable"

    def __init__(self, task: str, attempts: list[Attempt], prompt_text: str = "", user_id: str | None = None) -> None:
        summary = "; ".join(f"{a.provider}/{a.model}: {a.error or a.status}" for a in attempts) or "no provider"
        super().__init__(f"no LLM provider could answer task {task!r} ({summary})")
        self.task = task
        self.attempts = attempts
        self.prompt_text = prompt_text
        self.user_id = user_id
        self.details = None

    @property
    def public_message(self) -> str:
        return "No language model could answer right now; try again."


class StructuredOutputError(LLMUnavailableError):
    """No provider produced JSON that validates against the schema: nothing malformed is returned."""
