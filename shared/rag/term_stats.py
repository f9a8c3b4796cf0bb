"""Document frequencies of the knowledge base's full-text lexemes (`knowledge_terms`).

Retrieval matches a question on its rarest terms (see `shared.rag.retrieval`), which
needs to know how many chunks hold each lexeme. The counts are recomputed from
`search_tsv` in one statement (`ts_stat`) after every load that changed the table;
between loads a lexeme missing from the table counts as rare, and an empty table
(a base never refreshed) turns the selection off: every term is matched.
"""

from __future__ import annotations

import sqlalchemy as sa


def refresh_term_stats(conn: sa.Connection) -> int:
    """Replace the counts with the table's current ones; returns the number of lexemes."""
    conn.execute(sa.text("DELETE FROM knowledge_terms"))
    result = conn.execute(
        sa.text(
            "INSERT INTO knowledge_terms (lexeme, ndoc) "
            "SELECT word, ndoc FROM ts_stat('SELECT search_tsv FROM knowledge_nodes')"
        )
    )
    return result.rowcount or 0
