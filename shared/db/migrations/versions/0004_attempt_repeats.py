"""Attempts: a repeat of the same question within a short window counts once.

Issue 17: twenty resubmissions of one multiple-choice answer took mastery from 0.2 to
0.9999998. `shared.attempts.complete_attempt` now stores a student's second
answer to a question within its window as status 'repeat' (graded and kept, counted
for nothing: no mastery, progress, retraining counter, features or training data),
with `repeat_of` naming the counted attempt. The partial index serves the check
"has this student a counted answer to this question since t".

Downgrade turns repeats back into completed attempts (what they were before this
revision), so no answer is lost.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE task_attempts DROP CONSTRAINT IF EXISTS task_attempts_status_check;
ALTER TABLE task_attempts ADD CONSTRAINT task_attempts_status_check
    CHECK (status IN ('predicted', 'completed', 'repeat'));
ALTER TABLE task_attempts ADD COLUMN repeat_of uuid REFERENCES task_attempts(id) ON DELETE SET NULL;
CREATE INDEX task_attempts_user_question_idx ON task_attempts (user_id, question_id, completed_at DESC)
    WHERE status = 'completed'
"""

DOWNGRADE = """
DROP INDEX IF EXISTS task_attempts_user_question_idx;
UPDATE task_attempts SET status = 'completed' WHERE status = 'repeat';
ALTER TABLE task_attempts DROP COLUMN IF EXISTS repeat_of;
ALTER TABLE task_attempts DROP CONSTRAINT IF EXISTS task_attempts_status_check;
ALTER TABLE task_attempts ADD CONSTRAINT task_attempts_status_check CHECK (status IN ('predicted', 'completed'))
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
