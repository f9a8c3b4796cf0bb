"""The users table mirrors Firebase users the first time they write something.

The one home of writes to `users`: the full upsert from a verified principal, the bare
row that foreign keys need when only an id is known (an admin acting for a student), and
the student's profile (grade, level, learning style), which the student sets and
teachers and admins may read.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.errors import NotFoundError
from shared.identity import Principal

PROFILE_FIELDS = ("grade", "level", "learning_style")


class UserNotFoundError(NotFoundError):
    code = "user_not_found"


def ensure_user(conn: sa.Connection, principal: Principal) -> None:
    """Upsert the caller; the role follows the token's claims, which are the truth.

    Called on every chat turn, so a row already up to date is left alone without being
    locked: ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is false,
    which gives a read-only turn a transaction id and its commit a WAL flush.
    """
    conn.execute(
        sa.text(
            """
            INSERT INTO users (id, email, role)
            SELECT :id, :email, :role
             WHERE NOT EXISTS (
                   SELECT 1 FROM users
                    WHERE id = :id AND role IS NOT DISTINCT FROM :role
                      AND (CAST(:email AS text) IS NULL OR email IS NOT DISTINCT FROM :email))
            ON CONFLICT (id) DO UPDATE
               SET email = COALESCE(EXCLUDED.email, users.email),
                   role = EXCLUDED.role,
                   updated_at = now()
             WHERE users.role IS DISTINCT FROM EXCLUDED.role
                OR users.email IS DISTINCT FROM COALESCE(EXCLUDED.email, users.email)
            """
        ),
        {"id": principal.uid, "email": principal.email, "role": principal.role},
    )


def ensure_user_id(conn: sa.Connection, user_id: str) -> None:
    """A users row for `user_id` if none exists (foreign keys need it); nothing else changes."""
    conn.execute(sa.text("INSERT INTO users (id) VALUES (:id) ON CONFLICT (id) DO NOTHING"), {"id": user_id})


def read_profile(conn: sa.Connection, principal: Principal, user_id: str) -> dict[str, Any]:
    """A student reads their own profile; teachers and admins anyone's."""
    principal.require_self_or_staff(user_id)
    if user_id == principal.uid:
        ensure_user(conn, principal)
    row = conn.execute(
        sa.text("SELECT id, role, grade, level, learning_style, updated_at FROM users WHERE id = :id"),
        {"id": user_id},
    ).one_or_none()
    if row is None:
        raise UserNotFoundError("No such user.")
    return _profile_dict(row)


def update_profile(conn: sa.Connection, principal: Principal, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the given fields (None clears one); the others keep their value.

    A student changes only their own profile; an admin may change anyone's (support);
    a teacher reads but never writes.
    """
    principal.require_self_or_admin(user_id)
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:  # the request model already refuses these; a caller bug, not input
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    if user_id == principal.uid:
        ensure_user(conn, principal)
    else:
        ensure_user_id(conn, user_id)
    if changes:
        assignments = ", ".join(f"{name} = :{name}" for name in changes)
        conn.execute(
            sa.text(f"UPDATE users SET {assignments}, updated_at = now() WHERE id = :id"), {**changes, "id": user_id}
        )
    return read_profile(conn, principal, user_id)


def _profile_dict(row: Any) -> dict[str, Any]:
    return {
        "user_id": row.id,
        "role": row.role,
        "grade": row.grade,
        "level": row.level,
        "learning_style": row.learning_style,
        "updated_at": row.updated_at,
    }
