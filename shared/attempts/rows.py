"""The `task_attempts` rows before completion and after: the task a request names, the
'predicted' row written before a task, one row by id (locked for completion), a
student's list. Every id goes through `canonical_attempt_id` first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.attempts.errors import AttemptMismatchError, AttemptNotFoundError
from shared.curriculum import QuestionNotFoundError, TopicNotFoundError, question_by_id, topic_exists
from shared.users import ensure_user_id

PREDICTED, COMPLETED, REPEAT = "predicted", "completed", "repeat"


def resolve_task(
    conn: sa.Connection, topic_id: str | None, question_id: str | None, difficulty: int | None
) -> tuple[str, str | None, int]:
    """(topic_id, question_id, difficulty) of a task: the question's own when one is named.

    Raises QuestionNotFoundError / TopicNotFoundError (404) for ids that do not exist,
    AttemptMismatchError (422) when a question and a different topic are both named.
    """
    if question_id is not None:
        question = question_by_id(conn, question_id)
        if question is None:
            raise QuestionNotFoundError("No such question.")
        if topic_id is not None and topic_id != question["topic_id"]:
            raise AttemptMismatchError("The question belongs to another topic than topic_id.")
        topic_id = question["topic_id"]
        difficulty = int(question["difficulty"]) if difficulty is None else difficulty
    if topic_id is None:
        raise AttemptMismatchError("Name a topic_id or a question_id.")
    if not topic_exists(conn, topic_id):
        raise TopicNotFoundError("No such topic.")
    difficulty = 2 if difficulty is None else int(difficulty)  # the schema's default
    if not 1 <= difficulty <= 5:
        raise AttemptMismatchError(f"difficulty must be 1-5, got {difficulty}.")
    return topic_id, question_id, difficulty


def record_prediction(
    conn: sa.Connection,
    user_id: str,
    *,
    topic_id: str,
    question_id: str | None,
    difficulty: int,
    p_correct: float,
    expected_seconds: float,
    predictor: str,
    predictor_version: str | None,
) -> str:
    """Insert a 'predicted' attempt; its id is what the client completes later."""
    ensure_user_id(conn, user_id)
    return str(
        conn.execute(
            sa.text(
                """INSERT INTO task_attempts (user_id, question_id, topic_id, difficulty, status,
                                              predicted_correct, predicted_seconds, predictor,
                                              predictor_version)
                   VALUES (:user_id, :question_id, :topic_id, :difficulty, 'predicted',
                           :p, :s, :predictor, :version)
                   RETURNING id"""
            ),
            {
                "user_id": user_id,
                "question_id": question_id,
                "topic_id": topic_id,
                "difficulty": difficulty,
                "p": float(min(max(p_correct, 0.0), 1.0)),
                "s": float(max(expected_seconds, 0.0)),
                "predictor": predictor,
                "version": predictor_version,
            },
        ).scalar_one()
    )


def canonical_attempt_id(value: object) -> str | None:
    """The attempt id in the one spelling Postgres reads, or None when it is no UUID.

    Python accepts every standard spelling (`urn:uuid:...`, braces, no hyphens, upper
    case); Postgres's uuid input does not take the URN form, so an id checked here but
    cast raw in SQL was a 500. Everything below uses the canonical string."""
    import uuid

    text = str(value).strip()
    if text[:9].lower() == "urn:uuid:":  # the URN scheme and namespace are case-insensitive
        text = text[9:]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def get_attempt(conn: sa.Connection, attempt_id: str) -> dict[str, Any] | None:
    """One attempt row (None for an unknown or malformed id)."""
    canonical = canonical_attempt_id(attempt_id)
    if canonical is None:
        return None
    row = (
        conn.execute(sa.text("SELECT * FROM task_attempts WHERE id = CAST(:id AS uuid)"), {"id": canonical})
        .mappings()
        .first()
    )
    return dict(row) if row else None


def locked_attempt(conn: sa.Connection, attempt_id: str) -> dict[str, Any]:
    """The row to complete, locked `FOR UPDATE` until the caller's transaction ends, so two
    completions of one attempt cannot both see it 'predicted'."""
    canonical = canonical_attempt_id(attempt_id)
    if canonical is None:
        raise AttemptNotFoundError("No such attempt.")
    row = (
        conn.execute(
            sa.text(
                """SELECT id, user_id, topic_id, question_id, difficulty, status, predicted_correct,
                      predicted_seconds, predictor, predictor_version
                 FROM task_attempts WHERE id = CAST(:id AS uuid) FOR UPDATE"""
            ),
            {"id": canonical},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise AttemptNotFoundError("No such attempt.")
    return dict(row)


def list_attempts(conn: sa.Connection, user_id: str, limit: int) -> list[dict[str, Any]]:
    """A student's attempts, newest first (what the grading function's history shows)."""
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
