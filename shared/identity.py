"""Who is calling: the principal a verified token names, and the two roles.

A domain concept, not an HTTP one: services receive a `Principal` and ask it whether
the caller may act (`require_admin`, `require_self_or_admin`), raising the domain's
`ForbiddenError`. `shared.http.auth` builds principals from Firebase ID tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.errors import ForbiddenError


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    uid: str
    role: str = "student"
    email: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ForbiddenError("This action needs the admin role.")

    def require_self_or_admin(self, user_id: str) -> None:
        """A student reads and writes only their own data."""
        if user_id != self.uid and not self.is_admin:
            raise ForbiddenError("Students may only access their own data.")


def role_from_claims(claims: dict[str, Any]) -> str:
    if claims.get("role") == "admin" or claims.get("admin") is True:
        return "admin"
    return "student"
