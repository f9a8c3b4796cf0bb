"""The one error type handlers raise; the router turns it into the error shape.

Clients always get `{"error": {"code", "message", "request_id"}}` with a status
that means what it says; anything that is not an ApiError becomes a 500 with a
generic message, so no stack trace or internal detail ever reaches a client.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from shared.errors import DomainError, Kind


class ApiError(Exception):
    """An error whose message is safe to show the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        }
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "You may not access this resource.") -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def unavailable(message: str) -> ApiError:
    return ApiError(503, "unavailable", message, headers={"Retry-After": "5"})


def for_status(status: int, headers: dict[str, str] | None = None) -> ApiError:
    """The error for a bare HTTP status (raised by werkzeug, Flask or the HTTP server
    itself), in the usual shape: the code is the status phrase in snake case, the
    message the phrase. Nothing from the request is repeated."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = {404: "not_found", 413: "payload_too_large", 405: "method_not_allowed"}.get(status)
    code = code or re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
    return ApiError(status, code, f"{phrase}.", headers=headers)


#: the one place a domain error becomes an HTTP status
STATUS_OF_KIND: dict[Kind, int] = {
    "invalid": 422,
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "unavailable": 503,
    "upstream": 502,
}
RETRY_AFTER_S = 5


def from_domain(exc: DomainError) -> ApiError:
    """The HTTP answer to a domain refusal: its kind's status, its code, its public message."""
    status = STATUS_OF_KIND[exc.kind]
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.kind == "unavailable" else None
    return ApiError(status, exc.code, exc.public_message, details=exc.details, headers=headers)
