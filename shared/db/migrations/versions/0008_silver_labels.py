"""Silver labels (an LLM's intent labels, kept apart from human labels), the external
job of a training run (the Vertex AI CustomJob's resource name), and human confusion
labels of chat turns (the labelled conversations the confusion detector retrains on).

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
ALTER TABLE training_runs ADD COLUMN external_job text;
ALTER TABLE interactions
    ADD COLUMN confusion_label boolean,
    ADD COLUMN confusion_labelled_by text REFERENCES users(id) ON DELETE SET NULL,
    ADD COLUMN confusion_labelled_at timestamptz;
CREATE INDEX interactions_confusion_labelled_idx ON interactions (confusion_labelled_at)
    WHERE confusion_labelled_at IS NOT NULL
"""

DOWNGRADE = """
DROP INDEX IF EXISTS interactions_confusion_labelled_idx;
ALTER TABLE interactions DROP COLUMN IF EXISTS confusion_label, DROP COLUMN IF EXISTS confusion_labelled_by,
    DROP COLUMN IF EXISTS confusion_labelled_at;
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
