"""Mastery state and attempt history in Postgres: read back, and updated per answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shared.mastery.bkt import BKTParams, update
from shared.personalisation import Profile


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


@dataclass(frozen=True)
class StudentOnTopic:
    """What a writer for this student needs before writing: who they said they are and
    how well they know the topic."""

    profile: Profile | None  # None: no users row yet (a new student)
    mastery: float | None  # stored P(known), else the topic's prior; None without a topic
    measured: bool  # has the student answered anything on the topic (else mastery is the prior)


def student_on_topic(conn: sa.Connection, user_id: str, topic_id: str | None) -> StudentOnTopic:
    """The profile and the mastery of `topic_id` in one statement (a chat turn and a
    content plan read both; three statements before, docs/chat.md). The rows are owned by
    `shared.users` (profile) and this module (mastery); this only reads them."""
    row = conn.execute(
        sa.text(
            """SELECT u.id IS NOT NULL AS has_user, u.grade, u.level, u.learning_style,
                      COALESCE(m.p_mastery, t.bkt_p_init) AS mastery, m.user_id IS NOT NULL AS measured
                 FROM (SELECT 1) AS one
                 LEFT JOIN users u ON u.id = :user_id
                 LEFT JOIN topics t ON t.id = :topic_id
                 LEFT JOIN mastery_state m ON m.user_id = :user_id AND m.topic_id = :topic_id"""
        ),
        {"user_id": user_id, "topic_id": topic_id},
    ).one()
    profile = Profile(row.level, row.learning_style, row.grade) if row.has_user else None
    return StudentOnTopic(profile, None if row.mastery is None else float(row.mastery), bool(row.measured))


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
