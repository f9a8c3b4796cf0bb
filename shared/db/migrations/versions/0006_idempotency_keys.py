"""Idempotency keys: a retried write is answered with its first result.

`idempotency_keys` holds one row per (user, scope, key): 'pending' while the first
request runs (its duplicates wait), then the first response (status and JSON body)
once it succeeded. A failed first request deletes its row, so a retry runs again. The
request's body hash tells a genuine retry from a key reused for another request.
Rows older than the retention (shared/http/idempotency.py) are deleted lazily.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE idempotency_keys (
    user_id       text NOT NULL,
    scope         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    status        integer,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (user_id, scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)
"""

DOWNGRADE = """
DROP TABLE IF EXISTS idempotency_keys
"""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
