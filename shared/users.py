"""The users table mirrors Firebase users the first time they write something."""

from __future__ import annotations

import sqlalchemy as sa

from shared.http.auth import Principal


def ensure_user(conn: sa.Connection, principal: Principal) -> None:
    """Upsert the caller; the role follows the token's claims, which are the truth."""
    conn.execute(
        sa.text(
            """
            INSERT INTO users (id, email, role)
            VALUES (:id, :email, :role)
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
