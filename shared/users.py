"""The users table mirrors Firebase users the first time they write something.

The one home of writes to `users`: the full upsert from a verified principal, and the
bare row that foreign keys need when only an id is known (an admin acting for a student).
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.identity import Principal


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
