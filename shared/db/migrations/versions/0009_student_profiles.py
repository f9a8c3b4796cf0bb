"""Student profiles (grade beside level and learning style), the teacher and service roles, and whom a
generation was for (the per-user daily LLM budget reads it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE users ADD COLUMN grade smallint CHECK (grade BETWEEN 1 AND 12);
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('student', 'teacher', 'admin', 'service'));

ALTER TABLE generation_log ADD COLUMN user_id text;
CREATE INDEX generation_log_user_day_idx ON generation_log (user_id, created_at) WHERE user_id IS NOT NULL;
"""

DOWNGRADE = """
DROP INDEX IF EXISTS generation_log_user_day_idx;
ALTER TABLE generation_log DROP COLUMN IF EXISTS user_id;
UPDATE users SET role = 'student' WHERE role IN ('teacher', 'service');
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('student', 'admin'));
ALTER TABLE users DROP COLUMN IF EXISTS grade;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
