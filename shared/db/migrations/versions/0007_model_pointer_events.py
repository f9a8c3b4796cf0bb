"""The audit of moves of the model pointer by an operator (a rollback).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE model_pointer_events (
    id            bigserial PRIMARY KEY,
    from_version  text,
    to_version    text NOT NULL,
    actor         text NOT NULL,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS model_pointer_events;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
