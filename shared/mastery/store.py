"""Mastery state and attempt history in Postgres: read back, and updated per answer."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.mastery.bkt import BKTParams, update


def mastery_by_topic(conn: sa.Connection, user_id: str) -> list[dict[str, Any]]:
    """Every topic with the student's mastery, the topic prior where no state exists yet."""
    rows = conn.execute(
        sa.text(
            """SELECT t.id AS topic_id, t.title, t.course_id,
                      COALESCE(m.p_mastery, t.bkt_p_init) AS p_mastery,
                      COALESCE(m.n_updates, 0) AS n_updates,
                      m.updated_at,
                      COALESCE(p.tasks_completed, 0) AS tasks_completed,
                      COALESCE(p.tasks_correct, 0) AS tasks_correct
                 FROM topics t
                 LEFT JOIN mastery_state m ON m.topic_id = t.id AND m.user_id = :user_id
                 LEFT JOIN student_progress p ON p.topic_id = t.id AND p.user_id = :user_id
                ORDER BY t.course_id, t.position"""
        ),
        {"user_id": user_id},
    ).mappings()
    return [dict(r) for r in rows]


def topic_bkt_params(conn: sa.Connection, topic_id: str) -> BKTParams | None:
    row = conn.execute(
        sa.text("""SELECT bkt_p_init, bkt_p_learn, bkt_p_slip, bkt_p_guess FROM topics WHERE id = :id"""),
        {"id": topic_id},
    ).one_or_none()
    return None if row is None else BKTParams(*map(float, row))


def current_mastery(conn: sa.Connection, user_id: str, topic_id: str) -> float | None:
    """P(known) for user x topic: stored state, else the topic's prior, else None (no such topic)."""
    value = conn.execute(
        sa.text(
            """SELECT COALESCE(m.p_mastery, t.bkt_p_init)
                 FROM topics t
                 LEFT JOIN mastery_state m ON m.topic_id = t.id AND m.user_id = :user_id
                WHERE t.id = :topic_id"""
        ),
        {"user_id": user_id, "topic_id": topic_id},
    ).scalar()
    return None if value is None else float(value)


def is_measured(conn: sa.Connection, user_id: str, topic_id: str) -> bool:
    """Has this student answered anything on the topic (else their mastery is only the prior)?"""
    found = conn.execute(
        sa.text("SELECT 1 FROM mastery_state WHERE user_id = :user_id AND topic_id = :topic_id"),
        {"user_id": user_id, "topic_id": topic_id},
    ).first()
    return found is not None


def record_answer(
    conn: sa.Connection, user_id: str, topic_id: str, correct: float | bool, *, passed: bool | None = None
) -> float:
    """Apply one answer (credit in [0, 1], and whether it passed: `bkt.update`) to the
    stored state, O(1), safe under concurrent answers.

    The row is created at the prior if missing, then locked (FOR UPDATE) so two
    answers graded at once both count. Returns the new P(known).
    """
    params = topic_bkt_params(conn, topic_id)
    if params is None:
        raise LookupError(f"unknown topic {topic_id!r}")
    conn.execute(
        sa.text(
            """INSERT INTO mastery_state (user_id, topic_id, p_mastery)
               VALUES (:user_id, :topic_id, :prior)
               ON CONFLICT (user_id, topic_id) DO NOTHING"""
        ),
        {"user_id": user_id, "topic_id": topic_id, "prior": params.p_init},
    )
    current = conn.execute(
        sa.text(
            """SELECT p_mastery FROM mastery_state
                WHERE user_id = :user_id AND topic_id = :topic_id FOR UPDATE"""
        ),
        {"user_id": user_id, "topic_id": topic_id},
    ).scalar_one()
    new = update(float(current), correct, params, passed=passed)
    conn.execute(
        sa.text(
            """UPDATE mastery_state SET p_mastery = :p, n_updates = n_updates + 1, updated_at = now()
                WHERE user_id = :user_id AND topic_id = :topic_id"""
        ),
        {"p": new, "user_id": user_id, "topic_id": topic_id},
    )
    return new
