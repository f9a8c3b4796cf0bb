"""Hybrid retrieval SQL on the embedded Postgres, with vectors placed by hand so the
expected ranking is known (the encoder's quality is tested with the models)."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from shared.rag.retrieval import (
    RetrievalParams,
    RetrievedNode,
    full_text_candidates,
    full_text_ranks,
    fused_search,
    hybrid_search,
    of_kinds,
    vector_search,
)

DIM = 384


def unit(*weights: tuple[int, float]) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for axis, w in weights:
        v[axis] = w
    return v / np.linalg.norm(v)


NODES = [
    # id, topic, kind, title, content, vector
    ("loops-1", "loops", "explanation", "The for loop", "A for loop runs its body for every item.", unit((0, 1))),
    (
        "loops-2",
        "loops",
        "misconception",
        "Infinite while loops",
        "A while loop whose counter is never updated never ends.",
        unit((0, 0.8), (1, 0.6)),
    ),
    ("loops-3", "loops", "example", "Counting with range", "range(1, 11) counts from 1 to 10.", unit((1, 1))),
    (
        "errors-1",
        "errors",
        "explanation",
        "Division errors",
        "Dividing by zero raises ZeroDivisionError in Python.",
        unit((5, 1)),
    ),
    ("physics-1", "physics", "explanation", "Newton's second law", "F = m a relates force and mass.", unit((9, 1))),
]


@pytest.fixture()
def kb(db):
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        for topic in ("loops", "errors", "physics"):
            conn.execute(sa.text("INSERT INTO topics (id, course_id, title) VALUES (:t, 'c', :t)"), {"t": topic})
        for node_id, topic, kind, title, content, vec in NODES:
            conn.execute(
                sa.text(
                    """INSERT INTO knowledge_nodes
                         (id, source_id, topic_id, kind, title, content, content_hash, embedding)
                   VALUES (:id, :id, :topic, :kind, :title, :content, 'h', :vec)"""
                ),
                {"id": node_id, "topic": topic, "kind": kind, "title": title, "content": content, "vec": vec},
            )
    return db


def search(kb, text: str, vec: np.ndarray, **kw) -> list[RetrievedNode]:
    with kb.begin() as conn:
        return hybrid_search(conn, text, vec, RetrievalParams(**kw))


def test_vector_ranking_and_similarity(kb):
    hits = search(kb, "iteration", unit((0, 1), (1, 0.1)), k=3)
    assert [h.id for h in hits][:2] == ["loops-1", "loops-2"]
    assert hits[0].similarity == pytest.approx(float(unit((0, 1)) @ unit((0, 1), (1, 0.1))), abs=1e-4)


def test_exact_term_found_by_full_text_even_when_vector_is_far(kb):
    # The query vector points at loops; only full-text knows ZeroDivisionError.
    hits = search(kb, "why ZeroDivisionError", unit((0, 1)), k=3)
    ids = [h.id for h in hits]
    assert "errors-1" in ids
    err = next(h for h in hits if h.id == "errors-1")
    assert err.text_rank == 1
    assert err.similarity is None or err.similarity < 0.25


def test_node_in_both_lists_outranks_single_list_nodes(kb):
    hits = search(kb, "while loop counter", unit((0, 0.8), (1, 0.6)), k=5)
    assert hits[0].id == "loops-2"
    assert hits[0].vector_rank == 1 and hits[0].text_rank == 1


def test_topic_filter(kb):
    # Without the filter the physics node wins; with it, only loops nodes come back.
    assert search(kb, "force", unit((9, 1)), k=1)[0].id == "physics-1"
    hits = search(kb, "force", unit((9, 1)), k=5, topic_ids=["loops"], similarity_floor=-1.0)
    assert hits and {h.topic_id for h in hits} == {"loops"}


def test_kind_filter(kb):
    hits = search(kb, "loop", unit((0, 1)), k=5, kinds=["misconception", "example"])
    assert {h.kind for h in hits} <= {"misconception", "example"} and hits


def test_full_text_candidates_of_every_kind_keep_their_order_among_the_wanted_kinds(kb):
    """Chat reads the full-text side for every kind before the intent is known, then keeps
    the kinds the intent wants: the ranks the search restricted to them gives."""
    with kb.begin() as conn:
        every_kind = full_text_candidates(conn, "loop counter range", RetrievalParams(k=8))
        assert {("loops-2", "misconception"), ("loops-3", "example")} <= set(every_kind)
        wanted = of_kinds(every_kind, ["example", "explanation"])
        assert wanted == full_text_ranks(
            conn, "loop counter range", RetrievalParams(k=8, kinds=["example", "explanation"])
        )
        assert "loops-2" not in wanted and of_kinds(every_kind, None) == [i for i, _ in every_kind]
        hits = fused_search(conn, of_kinds(every_kind, ["example"]), None, RetrievalParams(k=5, kinds=["example"]))
    assert [(h.id, h.text_rank) for h in hits] == [("loops-3", 1)]


def test_similarity_floor_drops_far_vector_only_hits(kb):
    hits = search(kb, "qwertyuiop", unit((200, 1)), k=5, similarity_floor=0.3)
    assert hits == []
    loose = search(kb, "qwertyuiop", unit((200, 1)), k=5, similarity_floor=-1.0)
    assert len(loose) == len(NODES)


def test_snippet_cuts_at_sentence_boundary():
    node = RetrievedNode("x", "t", None, "explanation", "First sentence here. " * 30, 1.0, 0.9, None)
    snippet = node.snippet(100)
    assert len(snippet) <= 100 and snippet.endswith(".")


def test_hnsw_matches_exact_on_small_set(kb):
    q = unit((0, 1), (1, 0.3))
    with kb.begin() as conn:
        approx = vector_search(conn, q, 3)
    with kb.begin() as conn:
        exact = vector_search(conn, q, 3, exact=True)
    assert approx == exact == ["loops-1", "loops-2", "loops-3"]


def test_without_a_query_vector_only_full_text_runs(kb):
    hits = search(kb, "ZeroDivisionError", None, k=5)
    assert [h.id for h in hits] == ["errors-1"] and hits[0].similarity is None
    assert search(kb, "gibberishword", None, k=5) == []


def test_k_zero_returns_nothing_without_querying(kb):
    assert search(kb, "loop", unit((0, 1)), k=0) == []


def test_dotted_identifiers_are_found_by_their_parts(kb):
    with kb.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO knowledge_nodes (id, source_id, topic_id, kind, title, content, content_hash)
               VALUES ('lists-9', 'lists-9', 'loops', 'example', 'Growing a list',
                       'Call nums.append(4) to add 4; ages.get(''bob'') reads a key safely.', 'h')"""
            )
        )
    for query in ("how do I use append", "what does get do on a dictionary", "nums.append"):
        hits = search(kb, query, None, k=3)
        assert hits and hits[0].id == "lists-9", query


def _long_message(core: str, chars: int = 4000) -> str:
    """A student's long message: many distinct words of prose around the real question."""
    import random

    rng = random.Random(7)
    filler = " ".join(
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9))) for _ in range(900)
    )
    half = (chars - len(core)) // 2
    return f"{filler[:half]} {core} {filler[-half:]}"[:chars]


def test_full_text_of_a_long_message_is_bounded(kb):
    """A 4,000-character message sends at most `max_query_terms` terms to full text and
    ranks fewer matches the more terms it has (the cost of ORing hundreds of terms and
    ranking every match with them is what made long messages slow: over 30 s at 1,000
    nodes), and the identifier it is about still finds its node."""
    from shared.rag.retrieval import query_terms

    message = _long_message("my code fails with ZeroDivisionError ZeroDivisionError when dividing")
    assert len(message) == 4000 and len(set(message.split())) > 300
    sent: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        named = context.compiled_parameters[0] if context.compiled_parameters else {}
        if "qtext" in named:
            sent.append((named["qtext"], named["text_match_cap"]))

    sa.event.listen(kb, "before_cursor_execute", capture)
    try:
        hits = search(kb, message, None, k=3)
        search(kb, "why ZeroDivisionError", None, k=3)
    finally:
        sa.event.remove(kb, "before_cursor_execute", capture)
    (long_text, long_cap), (_short_text, short_cap) = sent
    terms = long_text.split()
    assert len(terms) <= RetrievalParams().max_query_terms and len(long_text) <= len(terms) * 41
    assert "ZeroDivisionError" in terms
    assert hits and hits[0].id == "errors-1"
    # Ranking work (terms x matches ranked) is bounded: a long query ranks fewer matches.
    assert len(terms) * long_cap <= RetrievalParams().text_work
    assert short_cap == RetrievalParams().text_match_cap and long_cap < short_cap
    # A short question is passed whole (less stop words); repeated words count once.
    assert query_terms("why does my while loop never stop, the loop", 24) == ["loop", "never", "stop"]


def test_query_terms_prefers_identifiers_then_repeated_words():
    from shared.rag.retrieval import query_terms

    text = "alpha beta gamma delta epsilon zeta eta theta my_list.append gamma gamma delta IndexError"
    assert query_terms(text, 4) == ["gamma", "delta", "my_list.append", "IndexError"]
    assert all(len(t) <= 40 for t in query_terms("x" * 500 + " loop", 24))


def test_connections_start_with_the_search_settings_so_a_turn_does_not_send_them(kb):
    """The pool sets hnsw.ef_search / iterative_scan once per connection; a search with
    the defaults sends no set_config, another ef_search is scoped to its transaction, and
    a rolled-back transaction does not undo the connection's settings."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(kb, "before_cursor_execute", record)
    try:
        with kb.begin() as conn:
            assert hybrid_search(conn, "loop", unit((0, 1)), RetrievalParams(k=2))
            assert conn.execute(sa.text("SHOW hnsw.ef_search")).scalar() == "100"
            assert conn.execute(sa.text("SHOW hnsw.iterative_scan")).scalar() == "relaxed_order"
        assert not any("set_config" in s for s in statements)
        with kb.begin() as conn:
            hybrid_search(conn, "loop", unit((0, 1)), RetrievalParams(k=2, ef_search=200))
            assert conn.execute(sa.text("SHOW hnsw.ef_search")).scalar() == "200"
        assert any("set_config" in s for s in statements)
        with kb.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            conn.rollback()
            assert conn.execute(sa.text("SHOW hnsw.ef_search")).scalar() == "100"
    finally:
        sa.event.remove(kb, "before_cursor_execute", record)


def test_a_server_refusing_the_search_settings_still_gives_a_working_connection(monkeypatch):
    """Fail soft: a setting the server refuses leaves the connection usable and unmarked,
    so retrieval sets what it needs per transaction. (Unknown `hnsw.*` names are accepted
    as placeholders before pgvector loads, so the refusal is forced with a bad value.)"""
    from shared.db import engine as engine_module
    from shared.rag import retrieval

    monkeypatch.setattr(retrieval, "SESSION_SETTINGS", {"statement_timeout": "not a duration"})
    eng = engine_module.create_engine()
    try:
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))  # the connect hook ran first
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            assert retrieval.SESSION_SETTINGS_KEY not in conn.info
    finally:
        eng.dispose()
