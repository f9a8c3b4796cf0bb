"""Reading mastery and attempt history back for a student."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


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


def list_attempts(conn: sa.Connection, user_id: str, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT id, question_id, topic_id, difficulty, status, predicted_correct,
                      predicted_seconds, predictor, correct, score, verdict, feedback, grader,
                      time_seconds, created_at, completed_at
                 FROM task_attempts
                WHERE user_id = :user_id
                ORDER BY created_at DESC
                LIMIT :limit"""
        ),
        {"user_id": user_id, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]
