"""Full text on a large base: matching on the question's rarest terms (knowledge_terms)
keeps the answer among the ranked matches when a common term matches more rows than
are ranked (text_match_cap)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.rag.knowledge_base import SourceNode, migrate_nodes
from shared.rag.retrieval import RetrievalParams, hybrid_search
from shared.rag.term_stats import refresh_term_stats
from tests.fakes import CountingEmbedder

COMMON = [SourceNode(f"c{i:02d}", f"Loop note {i}", f"A loop repeats its body, note {i}.") for i in range(60)]
ANSWER = SourceNode("answer", "Sentinel values", "A loop can stop at a sentinel value read from the input.")


def load(db) -> None:
    embedder = CountingEmbedder()
    migrate_nodes(db, COMMON, embedder, "m")
    migrate_nodes(db, [*COMMON, ANSWER], embedder, "m")  # the answer is the last row written


def text_hits(db, query: str) -> list[str]:
    params = RetrievalParams(k=3, candidates=5, text_match_cap=5)  # 5 matches ranked at most
    with db.begin() as conn:
        return [n.id for n in hybrid_search(conn, query, None, params)]


def test_a_load_counts_each_lexemes_documents(db):
    load(db)
    with db.connect() as conn:
        counts = dict(conn.execute(sa.text("SELECT lexeme, ndoc FROM knowledge_terms")).all())
    assert counts["loop"] == 61 and counts["sentinel"] == 1 and counts["repeat"] == 60


def test_rare_term_finds_the_answer_a_common_term_would_crowd_out_of_the_cap(db):
    load(db)
    assert text_hits(db, "loop sentinel")[0] == "answer"
    with db.begin() as conn:  # without counts every term matches: the first 5 loop rows are ranked
        conn.execute(sa.text("DELETE FROM knowledge_terms"))
    assert "answer" not in text_hits(db, "loop sentinel")
    with db.begin() as conn:
        assert refresh_term_stats(conn) > 0
    assert text_hits(db, "loop sentinel")[0] == "answer"


def test_a_question_of_common_terms_only_still_matches(db):
    load(db)
    hits = text_hits(db, "loop body")  # no rare term: the rarest one is matched
    assert len(hits) == 3
