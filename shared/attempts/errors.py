"""What recording or completing an attempt can refuse: `DomainError`s whose kind the
HTTP router maps to a status (404 / 403 / 409 / 422)."""

from __future__ import annotations

from typing import ClassVar

from shared.errors import DomainError, Kind


class AttemptError(DomainError):
    """Base of what completing an attempt can refuse (a `DomainError`: its kind says why)."""

    kind: ClassVar[Kind] = "invalid"
    code: ClassVar[str] = "bad_request"


class AttemptNotFoundError(AttemptError, LookupError):
    kind, code = "not_found", "not_found"


class AttemptForbiddenError(AttemptError, PermissionError):
    kind, code = "forbidden", "forbidden"


class AttemptCompletedError(AttemptError):
    kind, code = "conflict", "conflict"


class GradingRequiredError(AttemptError, ValueError):
    """A self-reported outcome for a question of the bank: its answer must be graded."""

    kind, code = "invalid", "grading_required"


class AttemptMismatchError(AttemptError, ValueError):
    """The caller names a topic/question/difficulty other than the attempt's own."""

    kind, code = "invalid", "attempt_mismatch"
