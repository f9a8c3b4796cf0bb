"""The domain's one error family: what a request may be refused for, in the domain's words.

Domain code (grading, prediction, chat, learning, ...) knows nothing of HTTP. It raises
a `DomainError` whose `kind` says what went wrong (the thing does not exist, the caller
may not do it, the input does not fit, ...) and whose `code` names the case for clients.
The router maps each kind to an HTTP status in exactly one place
(`shared.http.errors.from_domain`), so a function's entry point never translates errors.

The message must be safe to show a client: no input echoed back, no internal detail.
An error that carries internal detail for the logs keeps it in `str(exc)` and overrides
`public_message`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Kind = Literal["invalid", "not_found", "forbidden", "conflict", "unavailable", "upstream"]


class DomainError(Exception):
    """Base of every refusal the domain raises; subclasses set `kind` and `code`."""

    kind: ClassVar[Kind] = "invalid"
    code: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.details = details

    @property
    def public_message(self) -> str:
        """What the client is told (the message itself unless a subclass says otherwise)."""
        return str(self)


class InvalidError(DomainError):
    """The input is well-formed but does not fit (an index for a text question, ...)."""

    kind, code = "invalid", "invalid"


class NotFoundError(DomainError, LookupError):
    kind, code = "not_found", "not_found"


class ForbiddenError(DomainError, PermissionError):
    kind, code = "forbidden", "forbidden"


class ConflictError(DomainError):
    """The thing exists but is in a state that refuses this (already completed, ...)."""

    kind, code = "conflict", "conflict"


class UnavailableError(DomainError):
    """A dependency the request needs is down; retrying later may succeed."""

    kind, code = "unavailable", "unavailable"


class UpstreamError(DomainError):
    """A dependency answered, but with something unusable (a malformed generation)."""

    kind, code = "upstream", "bad_upstream"
