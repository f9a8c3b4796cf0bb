"""Full text: also index dotted identifiers by their parts.

The english parser reads `nums.append(4)` or `ages.get('bob')` as one token, so a
student asking about "append" missed a node that only writes `x.append(...)`. The
search column now adds, at the lowest weight, the text with every dot between
identifier characters turned into a space; the exact dotted token stays too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SPLIT = "regexp_replace({col}, '(?<=[[:alnum:]_)])[.](?=[[:alpha:]_])', ' ', 'g')"


def _column(split: bool) -> str:
    text = "coalesce(title, '') || ' ' || coalesce(content, '')"
    parts = [
        "setweight(to_tsvector('english', coalesce(title, '')), 'A')",
        "setweight(to_tsvector('english', coalesce(content, '')), 'B')",
    ]
    if split:
        parts.append(f"setweight(to_tsvector('english', {SPLIT.format(col=text)}), 'C')")
    return f"tsvector GENERATED ALWAYS AS ({' || '.join(parts)}) STORED"


def _replace(split: bool) -> None:
    op.execute("DROP INDEX IF EXISTS knowledge_nodes_search_tsv")
    op.execute("ALTER TABLE knowledge_nodes DROP COLUMN search_tsv")
    op.execute(f"ALTER TABLE knowledge_nodes ADD COLUMN search_tsv {_column(split)}")
    op.execute("CREATE INDEX knowledge_nodes_search_tsv ON knowledge_nodes USING gin (search_tsv)")


def upgrade() -> None:
    _replace(split=True)


def downgrade() -> None:
    _replace(split=False)
