"""Thumbs up/down on replies, and the human-label queue for low-confidence queries.

Feedback belongs to the student who received the reply; labels are an admin
job. Both write into the interaction's own row, so the training export reads
one table. A thumbs-down puts the reply's query in the review queue; the
rules, the label taxonomy, the audit and the label counter live in
`shared.learning.signals`. Errors are `SignalError`s, mapped to HTTP by the function.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from shared.learning.signals import (
    REVIEW_CONFIDENCE_BELOW,
    LabelResult,
    NotYourReplyError,
    Taxonomy,
    UnknownInteractionError,
)
from shared.learning.signals import label_interaction as _label_interaction


def _owner(conn: sa.Connection, interaction_id: uuid.UUID) -> str:
    owner = conn.execute(sa.text("SELECT user_id FROM interactions WHERE id = :id"), {"id": interaction_id}).scalar()
    if owner is None:
        raise UnknownInteractionError("No such interaction.")
    return owner


def record_feedback(
    conn: sa.Connection,
    uid: str,
    interaction_id: uuid.UUID,
    score: int,
    comment: str | None,
) -> dict[str, Any]:
    """Store the student's thumbs on their reply.

    A thumbs-down queues the query for a human label unless it is labelled already; a
    thumbs-up that replaces a thumbs-down takes it out again unless its confidence alone
    keeps it there.
    """
    if _owner(conn, interaction_id) != uid:
        # Even admins do not rate other people's replies: feedback is the student's voice.
        raise NotYourReplyError("You can only rate replies you received.")
    row = (
        conn.execute(
            sa.text(
                """UPDATE interactions
                  SET feedback_score = :score, feedback_comment = :comment, feedback_at = now(),
                      needs_review = CASE
                          WHEN human_label IS NOT NULL THEN needs_review
                          WHEN :score = -1 THEN true
                          WHEN feedback_score = -1 THEN coalesce(intent_confidence < :below, false)
                          ELSE needs_review END
                WHERE id = :id
            RETURNING id, feedback_score, feedback_comment, feedback_at, needs_review"""
            ),
            {"id": interaction_id, "score": score, "comment": comment, "below": REVIEW_CONFIDENCE_BELOW},
        )
        .mappings()
        .one()
    )
    return dict(row)


def review_queue(conn: sa.Connection, limit: int, offset: int) -> list[dict[str, Any]]:
    """Unlabelled queries waiting for a human, oldest first, each with why it is there
    (`reasons`: low_confidence, thumbs_down, silver_disagrees) and the LLM's silver label
    when there is one (`silver`: label, confidence, provider). A query queued without a
    thumbs-down or a disagreeing silver label was queued for its confidence (by the chat
    pipeline's threshold, which a model version may set above the seed 0.60)."""
    rows = conn.execute(
        sa.text(
            """SELECT i.id, i.user_id, i.query, i.intent, i.intent_confidence, i.intent_probs, i.feedback_score,
                      i.created_at,
                      CASE WHEN s.label IS NULL THEN NULL
                           ELSE json_build_object('label', s.label, 'confidence', s.confidence,
                                                  'provider', s.provider, 'prompt_version', s.prompt_version)
                      END AS silver,
                      array_remove(ARRAY[
                          CASE WHEN i.intent_confidence < :below
                                    OR (i.feedback_score IS DISTINCT FROM -1 AND s.agrees IS DISTINCT FROM false)
                               THEN 'low_confidence' END,
                          CASE WHEN i.feedback_score = -1 THEN 'thumbs_down' END,
                          CASE WHEN s.agrees = false THEN 'silver_disagrees' END
                      ], NULL) AS reasons
                 FROM interactions i
                 LEFT JOIN LATERAL (SELECT label, confidence, provider, prompt_version, agrees
                                      FROM silver_labels WHERE interaction_id = i.id
                                     ORDER BY created_at DESC, id DESC LIMIT 1) s ON true
                WHERE i.needs_review AND i.human_label IS NULL
                ORDER BY i.created_at
                LIMIT :limit OFFSET :offset"""
        ),
        {"limit": limit, "offset": offset, "below": REVIEW_CONFIDENCE_BELOW},
    ).mappings()
    return [{**dict(r), "reasons": list(r["reasons"] or [])} for r in rows]


def label_interaction(
    conn: sa.Connection,
    admin_uid: str,
    interaction_id: uuid.UUID,
    label: str,
    taxonomy: Taxonomy,
    *,
    retrain_after: int,
) -> LabelResult:
    """Label a query with an intent of the model in service (audited and counted)."""
    return _label_interaction(conn, admin_uid, interaction_id, label, taxonomy, retrain_after=retrain_after)
