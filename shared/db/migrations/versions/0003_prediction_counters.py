"""Prediction: a durable counter of completed tasks, and one retrain request per threshold.

Every N completed tasks a retrain request is recorded. Counting
with `count(*)` over task_attempts on every completion is O(table) and racy; a
counter row incremented with `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` is O(1)
and serialised by its row lock, so two completions committed at once get two
different values. The partial unique index makes recording the request for one
threshold crossing idempotent (a retried transaction cannot record it twice).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE prediction_counters (
    name        text PRIMARY KEY,                    -- e.g. completed_tasks
    value       bigint NOT NULL DEFAULT 0 CHECK (value >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX retrain_requests_tasks_threshold_uq ON retrain_requests ((payload->>'threshold'))
    WHERE reason = 'tasks_threshold';
CREATE INDEX task_attempts_completed_idx ON task_attempts (completed_at DESC)
    WHERE status = 'completed'
"""

DOWNGRADE = """
DROP INDEX IF EXISTS task_attempts_completed_idx;
DROP INDEX IF EXISTS retrain_requests_tasks_threshold_uq;
DROP TABLE IF EXISTS prediction_counters
"""


def _statements(script: str) -> list[str]:
    # pg8000 sends each statement as a prepared statement: one at a time.
    return [s.strip() for s in script.split(";\n") if s.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
