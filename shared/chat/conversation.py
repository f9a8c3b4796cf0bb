"""Chat sessions and their messages, written by the pipeline and read back by students:
the one home of `chat_sessions` and `chat_messages`."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from shared.errors import ForbiddenError, NotFoundError
from shared.identity import Principal


@dataclass(frozen=True)
class PastMessage:
    content: str
    embedding: np.ndarray | None
    created_at: dt.datetime


def topic_title(conn: sa.Connection, topic_id: str) -> str | None:
    return conn.execute(sa.text("SELECT title FROM topics WHERE id = :id"), {"id": topic_id}).scalar()


@dataclass(frozen=True)
class SessionView:
    """A chat session as a turn sees it."""

    session_id: uuid.UUID
    topic_id: str | None
    topic_title: str | None  # the title of topic_id when it was read with the session (else None)
    history: list[PastMessage]  # the student's last messages in the session, oldest first


# The session, its topic's title and the student's last messages in one statement: a
# follow-up turn's whole read of the conversation (three statements before, docs/chat.md).
_SESSION_READ = sa.text(
    """SELECT s.user_id, s.topic_id, t.title AS topic_title, h.content, h.embedding, h.created_at
         FROM chat_sessions s
         LEFT JOIN topics t ON t.id = s.topic_id
         LEFT JOIN LATERAL (
              SELECT m.id, m.content, m.embedding, m.created_at FROM chat_messages m
               WHERE m.session_id = s.id AND m.role = 'user'
               ORDER BY m.created_at DESC, m.id DESC LIMIT :n) h ON true
        WHERE s.id = :id
        ORDER BY h.created_at, h.id"""
)


def open_session(
    conn: sa.Connection,
    principal: Principal,
    session_id: uuid.UUID | None,
    topic_id: str | None,
    first_message: str,
    history: int = 0,
) -> SessionView:
    """The caller's session (created when none is given), its topic and the student's last
    `history` messages in it.

    Only the owner may add to a session, admins included: a chat is the student's.
    The session row is read without a lock (FOR UPDATE would give every turn a
    transaction id and a WAL flush at commit); its only change, the topic, is a single
    UPDATE whose last writer wins.
    """
    if session_id is None:
        new_id = conn.execute(
            sa.text(
                """INSERT INTO chat_sessions (user_id, topic_id, title) VALUES (:u, :t, :title)
                   RETURNING id"""
            ),
            {"u": principal.uid, "t": topic_id, "title": first_message[:80]},
        ).scalar_one()
        return SessionView(new_id, topic_id, None, [])
    rows = conn.execute(_SESSION_READ, {"id": session_id, "n": history}).all()
    if not rows:
        raise NotFoundError("No such chat session.")
    head = rows[0]
    if head.user_id != principal.uid:
        raise ForbiddenError("You can only write to your own chat sessions.")
    past = [PastMessage(r.content, r.embedding, r.created_at) for r in rows if r.created_at is not None]
    if topic_id and topic_id != head.topic_id:
        conn.execute(
            sa.text("UPDATE chat_sessions SET topic_id = :t WHERE id = :id"), {"t": topic_id, "id": session_id}
        )
        return SessionView(session_id, topic_id, None, past)
    return SessionView(session_id, head.topic_id, head.topic_title, past)


def log_interaction(conn: sa.Connection, row: dict[str, Any]) -> uuid.UUID:
    """One row per request with every model's output and version: the training data of tomorrow."""
    params = {
        **row,
        "intent_probs": json.dumps(row.get("intent_probs")),
        "model_versions": json.dumps(row.get("model_versions") or {}),
        "timings_ms": json.dumps(row.get("timings_ms") or {}),
    }
    return conn.execute(
        sa.text(
            """INSERT INTO interactions (
                   request_id, user_id, session_id, kind, query, topic_id, intent, intent_probs,
                   intent_confidence, intent_source, confusion_score, is_confused, mastery,
                   retrieved_node_ids, prompt_key, provider, llm_model, model_versions, reply,
                   tokens_in, tokens_out, latency_ms, timings_ms, needs_review)
               VALUES (
                   :request_id, :user_id, :session_id, :kind, :query, :topic_id, :intent,
                   CAST(:intent_probs AS jsonb), :intent_confidence, :intent_source, :confusion_score,
                   :is_confused, :mastery, :retrieved_node_ids, :prompt_key, :provider, :llm_model,
                   CAST(:model_versions AS jsonb), :reply, :tokens_in, :tokens_out, :latency_ms,
                   CAST(:timings_ms AS jsonb), :needs_review)
               RETURNING id"""
        ),
        params,
    ).scalar_one()


def record_turn(
    conn: sa.Connection,
    session_id: uuid.UUID,
    message: str,
    embedding: np.ndarray | None,
    reply: str,
    interaction_id: uuid.UUID,
) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO chat_messages (session_id, role, content, embedding, interaction_id)
               VALUES (:s, 'user', :m, :e, :i), (:s, 'assistant', :r, NULL, :i)"""
        ),
        {"s": session_id, "m": message, "e": embedding, "r": reply, "i": interaction_id},
    )
    conn.execute(sa.text("UPDATE chat_sessions SET last_message_at = now() WHERE id = :s"), {"s": session_id})


# --- reading back: a student's sessions and messages ---------------------------------
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
