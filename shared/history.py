"""A student's chat sessions and messages, as they read them back."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from shared.errors import NotFoundError
from shared.identity import Principal


def list_sessions(conn: sa.Connection, user_id: str, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT s.id, s.topic_id, s.title, s.created_at, s.last_message_at,
                      (SELECT count(*) FROM chat_messages m WHERE m.session_id = s.id) AS messages
                 FROM chat_sessions s
                WHERE s.user_id = :user_id
                ORDER BY s.last_message_at DESC
                LIMIT :limit"""
        ),
        {"user_id": user_id, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def session_messages(
    conn: sa.Connection, principal: Principal, session_id: uuid.UUID, limit: int
) -> list[dict[str, Any]]:
    owner = conn.execute(sa.text("SELECT user_id FROM chat_sessions WHERE id = :id"), {"id": session_id}).scalar()
    if owner is None:
        raise NotFoundError("No such chat session.")
    principal.require_self_or_admin(owner)
    rows = conn.execute(
        sa.text(
            """SELECT id, role, content, interaction_id, created_at
                 FROM chat_messages WHERE session_id = :id
                ORDER BY created_at, id LIMIT :limit"""
        ),
        {"id": session_id, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]
