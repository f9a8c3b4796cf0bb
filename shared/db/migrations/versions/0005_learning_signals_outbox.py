"""Learning loop: audited labels, a label counter per model, and the retrain outbox.

- `label_events`: every (re)label of an interaction: who, when, the old and the new
  value, and the intent model (version and weights sha256) whose taxonomy accepted it.
  Existing labels are backfilled as first labels (old value NULL).
- `label_counters`: verified labels counted per model *training*, keyed by the sha256
  of the model's weights in service, so a retrained model starts a new count and a
  version that copies the old weights keeps counting. O(1) and serialised by the
  row lock, like prediction_counters (0003).
- one retrain request per labels crossing (unique per model, weights and threshold),
  and one scheduled request per night (unique per date): replays insert nothing.
- `retrain_requests.publish_attempts` / `last_error`: the outbox sweep's bookkeeping;
  a row stays 'pending' until its publish has been confirmed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE label_events (
    id              bigserial PRIMARY KEY,
    interaction_id  uuid NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
    old_label       text,
    new_label       text NOT NULL,
    labelled_by     text NOT NULL,                    -- admin uid; no FK: the audit outlives accounts
    labelled_at     timestamptz NOT NULL DEFAULT now(),
    model           text NOT NULL DEFAULT 'intent',
    model_version   text,                             -- version in service when the label was accepted
    model_key       text                              -- sha256 of its weights (the label counter's key)
);
CREATE INDEX label_events_interaction_idx ON label_events (interaction_id, labelled_at);
CREATE INDEX label_events_labelled_at_idx ON label_events (labelled_at);
INSERT INTO label_events (interaction_id, old_label, new_label, labelled_by, labelled_at)
    SELECT id, NULL, human_label, coalesce(labelled_by, 'unknown'), coalesce(labelled_at, created_at)
      FROM interactions WHERE human_label IS NOT NULL;
CREATE TABLE label_counters (
    model          text NOT NULL,
    model_key      text NOT NULL,
    model_version  text,
    value          bigint NOT NULL DEFAULT 0 CHECK (value >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, model_key)
);
CREATE UNIQUE INDEX retrain_requests_labels_threshold_uq
    ON retrain_requests ((payload->>'model'), (payload->>'model_key'), (payload->>'threshold'))
    WHERE reason = 'labels_threshold';
CREATE UNIQUE INDEX retrain_requests_schedule_uq ON retrain_requests ((payload->>'date'))
    WHERE reason = 'schedule';
ALTER TABLE retrain_requests ADD COLUMN publish_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE retrain_requests ADD COLUMN last_error text;
CREATE INDEX interactions_feedback_at_idx ON interactions (feedback_at) WHERE feedback_at IS NOT NULL;
CREATE INDEX interactions_created_idx ON interactions (created_at)
"""

DOWNGRADE = """
DROP INDEX IF EXISTS interactions_created_idx;
DROP INDEX IF EXISTS interactions_feedback_at_idx;
ALTER TABLE retrain_requests DROP COLUMN IF EXISTS last_error;
ALTER TABLE retrain_requests DROP COLUMN IF EXISTS publish_attempts;
DROP INDEX IF EXISTS retrain_requests_schedule_uq;
DROP INDEX IF EXISTS retrain_requests_labels_threshold_uq;
DROP TABLE IF EXISTS label_counters;
DROP TABLE IF EXISTS label_events
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
