"""Completed tasks count toward retraining: every N of them, one durable retrain request.

The request is a `retrain_requests` row (status 'pending', reason 'tasks_threshold');
publishing pending rows to Pub/Sub is the learning loop's job (it marks them
'published'), so a request recorded here is never lost even before that exists.

Idempotent per threshold crossing: the counter (table prediction_counters, migration
0003) hands each completion its own number under a row lock, only the completion that
makes it a multiple of N records a request, and a unique index on the threshold makes
a replay of that insert a no-op.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

COUNTER = "completed_tasks"
REASON = "tasks_threshold"


@dataclass(frozen=True)
class RetrainRequest:
    id: int
    reason: str
    threshold: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_completed_task(
    conn: sa.Connection, *, every: int, user_id: str | None = None, attempt_id: str | None = None
) -> tuple[int, RetrainRequest | None]:
    """Add one completed task to the counter; record a retrain request on each N-th.

    Returns (counter value after this task, the request recorded now or None).
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    value = int(
        conn.execute(
            sa.text(
                """INSERT INTO prediction_counters (name, value) VALUES (:name, 1)
                   ON CONFLICT (name) DO UPDATE
                      SET value = prediction_counters.value + 1, updated_at = now()
                   RETURNING value"""
            ),
            {"name": COUNTER},
        ).scalar_one()
    )
    if value % every:
        return value, None
    payload = {
        "threshold": value,
        "every": every,
        "completed_tasks": value,
        "trigger": "tasks",
        "models": ["predictor"],
        "last_user_id": user_id,
        "last_attempt_id": attempt_id,
    }
    request_id = conn.execute(
        sa.text(
            """INSERT INTO retrain_requests (reason, payload)
               VALUES (:reason, CAST(:payload AS jsonb))
               ON CONFLICT ((payload->>'threshold')) WHERE reason = 'tasks_threshold' DO NOTHING
               RETURNING id"""
        ),
        {"reason": REASON, "payload": json.dumps(payload)},
    ).scalar()
    if request_id is None:  # this crossing was recorded already
        return value, None
    return value, RetrainRequest(int(request_id), REASON, value)


def completed_task_count(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.text("SELECT COALESCE((SELECT value FROM prediction_counters WHERE name = :n), 0)"),
            {"n": COUNTER},
        ).scalar_one()
    )


def pending_requests(conn: sa.Connection, reason: str = REASON) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT id, reason, payload, status, created_at FROM retrain_requests
                WHERE reason = :reason AND status = 'pending' ORDER BY id"""
        ),
        {"reason": reason},
    ).mappings()
    return [dict(r) for r in rows]
