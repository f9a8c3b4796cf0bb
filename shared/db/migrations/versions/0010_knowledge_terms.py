"""Document frequency of every full-text lexeme of the knowledge base; topic titles' lexemes.

Full text ORs a question's terms and ranks at most `text_match_cap` matches. On a large
library the common terms of a question ("function", "use", "value") match tens of
thousands of chunks, the capped set is whatever rows come first, and the chunk that
answers is rarely in it (hit@5 0.00 at 100k chunks, docs/chat.md). With each lexeme's
document frequency, retrieval matches on the question's rarest terms and ranks the
matches with all of them. `shared.rag.term_stats` refreshes the table after a load.

Every chat turn also asks which topics the message names (`shared.chat.grounding.
named_topics`); stemming every topic title for every message cost ~6 ms a turn with 142
topics. The titles' lexemes are now a stored generated column.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE knowledge_terms (
    lexeme  text PRIMARY KEY,
    ndoc    integer NOT NULL            -- knowledge_nodes rows whose search_tsv holds it
)""",
    """ALTER TABLE topics ADD COLUMN title_lexemes text[]
    GENERATED ALWAYS AS (tsvector_to_array(to_tsvector('english', title))) STORED""",
]

DOWNGRADE = [
    "ALTER TABLE topics DROP COLUMN IF EXISTS title_lexemes",
    "DROP TABLE IF EXISTS knowledge_terms",
]


def upgrade() -> None:
    for statement in UPGRADE:  # pg8000 sends one statement at a time
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
