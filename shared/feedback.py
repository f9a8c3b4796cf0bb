"""Thumbs up/down on replies, and the human-label queue for low-confidence queries.

Feedback belongs to the student who received the reply; labels are an admin
job. Both write into the interaction's own row, so the training export reads
one table.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from shared.http.auth import Principal
from shared.http.errors import forbidden, not_found


def _owner(conn: sa.Connection, interaction_id: uuid.UUID) -> str:
    owner = conn.execute(sa.text("SELECT user_id FROM interactions WHERE id = :id"), {"id": interaction_id}).scalar()
    if owner is None:
        raise not_found("No such interaction.")
    return owner


def record_feedback(
    conn: sa.Connection,
    principal: Principal,
    interaction_id: uuid.UUID,
    score: int,
    comment: str | None,
) -> dict[str, Any]:
    if _owner(conn, interaction_id) != principal.uid:
        # Even admins do not rate other people's replies: feedback is the student's voice.
        raise forbidden("You can only rate replies you received.")
    row = (
        conn.execute(
            sa.text(
                """UPDATE interactions
                  SET feedback_score = :score, feedback_comment = :comment, feedback_at = now()
                WHERE id = :id
            RETURNING id, feedback_score, feedback_comment, feedback_at"""
            ),
            {"id": interaction_id, "score": score, "comment": comment},
        )
        .mappings()
        .one()
    )
    return dict(row)


def review_queue(conn: sa.Connection, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT id, user_id, query, intent, intent_confidence, intent_probs, created_at
                 FROM interactions
                WHERE needs_review AND human_label IS NULL
                ORDER BY created_at
                LIMIT :limit OFFSET :offset"""
        ),
        {"limit": limit, "offset": offset},
    ).mappings()
    return [dict(r) for r in rows]


def label_interaction(conn: sa.Connection, admin: Principal, interaction_id: uuid.UUID, label: str) -> dict[str, Any]:
    _owner(conn, interaction_id)  # 404 for an unknown id
    row = (
        conn.execute(
            sa.text(
                """UPDATE interactions
                  SET human_label = :label, labelled_by = :admin, labelled_at = now(),
                      needs_review = false
                WHERE id = :id
            RETURNING id, human_label, labelled_by, labelled_at"""
            ),
            {"id": interaction_id, "label": label, "admin": admin.uid},
        )
        .mappings()
        .one()
    )
    return dict(row)
