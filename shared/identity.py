"""Who is calling: the principal a verified token names, and its role: student, teacher,
admin, or service (a service account of another back end, for the embeddings route).

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

    @property
    def is_staff(self) -> bool:
        """Teachers and admins: they may read students' profiles (teachers change nothing)."""
        return self.role in ("teacher", "admin")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ForbiddenError("This action needs the admin role.")

    def require_self_or_admin(self, user_id: str) -> None:
        """A student reads and writes only their own data."""
        if user_id != self.uid and not self.is_admin:
            raise ForbiddenError("Students may only access their own data.")

    def require_admin_or_service(self) -> None:
        """Routes for other back-end services (embeddings): an admin or a service account."""
        if self.role not in ("admin", "service"):
            raise ForbiddenError("This action needs the admin role or a service account.")

    def require_self_or_staff(self, user_id: str) -> None:
        """Reading a student: the student, a teacher or an admin."""
        if user_id != self.uid and not self.is_staff:
            raise ForbiddenError("Students may only access their own data.")


def role_from_claims(claims: dict[str, Any]) -> str:
    """The role a custom claim grants (`role: admin|teacher|service`, or `admin: true`); else student."""
    if claims.get("role") == "admin" or claims.get("admin") is True:
        return "admin"
    if claims.get("role") in ("teacher", "service"):
        return str(claims["role"])
    return "student"
