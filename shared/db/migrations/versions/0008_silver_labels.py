"""Silver labels (an LLM's intent labels, kept apart from human labels) and the external
job of a training run (the Vertex AI CustomJob's resource name).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE silver_labels (
    id              bigserial PRIMARY KEY,
    interaction_id  uuid NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
    label           text NOT NULL,
    confidence      real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    provider        text NOT NULL,
    llm_model       text NOT NULL,
    prompt_version  text NOT NULL,
    taxonomy_version text,
    model_intent    text,
    agrees          boolean,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (interaction_id, prompt_version)
);
CREATE INDEX silver_labels_created_idx ON silver_labels (created_at);
ALTER TABLE training_runs ADD COLUMN external_job text
"""

DOWNGRADE = """
ALTER TABLE training_runs DROP COLUMN IF EXISTS external_job;
DROP TABLE IF EXISTS silver_labels
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
