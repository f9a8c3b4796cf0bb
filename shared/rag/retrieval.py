"""Hybrid retrieval: pgvector HNSW cosine search fused with Postgres full-text search.

Dense vectors find paraphrases ("why does my loop never stop" ~ "infinite
loop"); they blur exact tokens such as `enumerate()` or `ZeroDivisionError`,
which full-text search matches exactly. Reciprocal rank fusion (Cormack et al.,
2009) combines the two rankings without calibrating their scores against each
other: score = sum over lists of w / (k + rank).

Two SQL statements: the full-text side's ranked ids (`full_text_ranks`), then the
vector side, the fusion and the rows of the top k only (`fused_search`; the vector
side's distances are reused, only a full-text-only hit's is computed). They are apart
so the chat can run the first while the encoder still works on the message (the text
side needs the message only); `hybrid_search` runs both. The vector side applies
the topic filter inside the HNSW scan (pgvector 0.8 iterative scans), so a
filter never starves the result list; the similarity floor drops vector-only
hits too far from the query (a full-text hit stands on its exact match).
Full text ORs the query's terms (a student's question rarely contains every
word of the node that answers it) and ranks by term frequency normalised by document
length (`ts_rank(..., 1)`). Cover density (`ts_rank_cd`) was the ranking before: with an
ORed query it rewards a node that repeats one common term, and on held-out sentences
of real documentation it found the right chunk in the top 5 for 5% of queries, against
53% for normalised `ts_rank` (1,000 chunks, docs/chat.md).

The work one message can cause is bounded, so a 4,000-character message costs about
what a short question does: full text sees at most `max_query_terms` distinct terms
(identifiers and the message's most repeated words first, see `query_terms`), each at
most `MAX_TERM_CHARS` long, and ranks at most `text_match_cap` matching rows, fewer when
the query has many terms (ranking costs terms x rows; `text_work` bounds the product);
the vector side sees the encoder's truncated input and at most `candidates` rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

# recall@10 against exact search on the documentation corpus (docs/chat.md): at 30k
# chunks 0.977 with 64, 0.989 with 100 (+1-3 ms under load), falling with size; 100 keeps
# the 0.95 goal with margin at 100k.
DEFAULT_EF_SEARCH = 100
DEFAULT_ITERATIVE_SCAN = "relaxed_order"

#: The search settings every pooled connection starts with (`shared.db.engine` applies them
#: once per connection and records them under SESSION_SETTINGS_KEY in the connection's
#: info): a turn with the default parameters then needs no `set_config` statement of its
#: own (one round trip, ~1.7 ms p50 a turn at 100k chunks, docs/chat.md).
SESSION_SETTINGS: dict[str, str] = {
    "hnsw.ef_search": str(DEFAULT_EF_SEARCH),
    "hnsw.iterative_scan": DEFAULT_ITERATIVE_SCAN,
}
SESSION_SETTINGS_KEY = "search_settings"


@dataclass(frozen=True)
class RetrievalParams:
    k: int = 5  # results returned
    candidates: int = 40  # per list, before fusion
    topic_ids: Sequence[str] | None = None
    kinds: Sequence[str] | None = None  # node kinds to keep (None: all)
    similarity_floor: float = 0.25  # cosine similarity below which vector-only hits are dropped
    rrf_k: int = 60
    vector_weight: float = 1.0
    text_weight: float = 1.0
    ef_search: int = DEFAULT_EF_SEARCH  # HNSW search breadth: recall vs latency
    text_match_cap: int = 1000  # full-text matches ranked at most (bounds latency on big bases)
    max_query_terms: int = 12  # distinct terms ORed on the full-text side (bounds long messages)
    text_work: int = 4000  # terms x matches ranked at most: more terms, fewer matches ranked
    iterative_scan: str = DEFAULT_ITERATIVE_SCAN  # pgvector 0.8: keep scanning when filters remove rows


@dataclass(frozen=True)
class RetrievedNode:
    id: str
    title: str
    topic_id: str | None
    kind: str
    content: str
    score: float
    similarity: float | None  # cosine similarity to the question (None without vectors)
    text_rank: int | None
    vector_rank: int | None = None
    topic_title: str | None = None  # the title of topic_id (the fused statement reads it with the node)
    extra: dict = field(default_factory=dict, compare=False)

    def snippet(self, max_chars: int = 280) -> str:
        """The start of the node, cut at a sentence (or word) boundary."""
        text = " ".join(self.content.split())
        if len(text) <= max_chars:
            return text
        cut = text[:max_chars]
        end = cut.rfind(". ")
        if end >= max_chars // 2:
            return cut[: end + 1]
        return cut[: cut.rfind(" ")].rstrip(",;:") + " …"


# Postgres' english stop words (tsearch_data/english.stop): dropped by the parser anyway,
# so they must not use up the term budget of a long message.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all any both each few more most other
    some such no nor not only own same so than too very s t can will just don should now""".split()
)
MAX_TERM_CHARS = 40  # longer "words" (pasted hashes, base64, minified code) are noise to full text
_TERM = re.compile(r"\w+(?:\.\w+)*")
_NUMBER = re.compile(r"[\d._]+")
_IDENTIFIER = re.compile(r"[._]|(?-i:[a-z][A-Z])|(?:error|exception|warning)$", re.I)


def query_terms(text: str, max_terms: int) -> list[str]:
    """The terms full-text search is given for `text`: at most `max_terms` distinct words
    (case-insensitively), in the order they appear.

    A short question keeps every word that is not a stop word. A long message keeps the
    identifiers first (`dict.get`, `my_list`, `ZeroDivisionError`: what exact search is
    for), then the words it repeats most (what the message is about), then the earliest.
    """
    seen: dict[str, tuple[str, int]] = {}
    counts: Counter[str] = Counter()
    for match in _TERM.finditer(text):
        word = match.group().strip("_.")
        key = word.lower()
        if not word or key in STOP_WORDS or len(word) > MAX_TERM_CHARS:
            continue
        counts[key] += 1
        seen.setdefault(key, (word, len(seen)))
    if len(seen) <= max_terms:
        return [word for word, _ in seen.values()]

    def salience(key: str) -> tuple[int, int, int]:
        word, position = seen[key]
        identifier = _IDENTIFIER.search(word) and not _NUMBER.fullmatch(word)
        return (0 if identifier else 1, -counts[key], position)

    kept = sorted(sorted(seen, key=salience)[:max_terms], key=lambda k: seen[k][1])
    return [seen[k][0] for k in kept]


# The query's terms ORed, from the text as typed and with dotted identifiers split
# (`dict.get` also asks for `get`), matching how migration 0002 indexes nodes.
QUERY_TSQUERY = (
    "CAST(replace(CAST(plainto_tsquery('english', :qtext) || plainto_tsquery('english', "
    "regexp_replace(:qtext, '(?<=[[:alnum:]_)])[.](?=[[:alpha:]_])', ' ', 'g')) AS text), '&', '|') AS tsquery)"
)

# The query's lexemes (as typed and with dotted identifiers split), as the index sees them.
QUERY_LEXEMES = (
    "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', :qtext) || to_tsvector('english', "
    "regexp_replace(:qtext, '(?<=[[:alnum:]_)])[.](?=[[:alpha:]_])', ' ', 'g')))) AS lexeme"
)

# The full-text side, shared by both statements. Ranking is per row, so only the first
# :text_match_cap matches are ranked: without the cap one common word in a large
# knowledge base makes this side cost more than everything else together. Which rows
# are the first is up to the index, so matching uses the question's rarest lexemes
# (document frequencies in knowledge_terms, see shared.rag.term_stats), as many as
# together match at most :text_match_cap rows (at least one): on a small base that is
# every term, on a large one the rare terms, whose matches are the likely answers. The
# matches are ranked with every term. Without counts (an empty knowledge_terms) every
# term matches.
FTS_CTES = f"""
    q_lexemes AS MATERIALIZED ({QUERY_LEXEMES}),
    q_match AS MATERIALIZED (
        SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM knowledge_terms) THEN {QUERY_TSQUERY}
               ELSE (SELECT CAST(string_agg(quote_literal(r.lexeme), ' | ') AS tsquery)
                       FROM (SELECT l.lexeme,
                                    sum(COALESCE(t.ndoc, 0)) OVER w AS matches, row_number() OVER w AS n
                               FROM q_lexemes l LEFT JOIN knowledge_terms t ON t.lexeme = l.lexeme
                             WINDOW w AS (ORDER BY t.ndoc NULLS FIRST, l.lexeme)) r
                      WHERE r.n = 1 OR r.matches <= :text_match_cap)
               END AS q
    ),
    fts_matches AS MATERIALIZED (
        SELECT n.id, n.kind, n.search_tsv
          FROM knowledge_nodes n, q_match m
         WHERE n.search_tsv @@ m.q
           AND (CAST(:topics AS text[]) IS NULL OR n.topic_id = ANY(CAST(:topics AS text[])))
           AND (CAST(:kinds AS text[]) IS NULL OR n.kind = ANY(CAST(:kinds AS text[])))
         LIMIT :text_match_cap
    ),
    fts_candidates AS (
        SELECT m.id, m.kind, ts_rank(m.search_tsv, r.q, 1) AS ts
          FROM fts_matches m,
               (SELECT CAST(string_agg(quote_literal(lexeme), ' | ') AS tsquery) AS q FROM q_lexemes) r
         ORDER BY ts DESC, m.id
         LIMIT :candidates
    ),
    fts AS (
        SELECT id, kind, row_number() OVER (ORDER BY ts DESC, id) AS rank FROM fts_candidates
    )"""

# The full-text side: candidate ids in rank order (its first statement).
FULL_TEXT_SQL = sa.text(
    f"""
    WITH {FTS_CTES}
    SELECT id, kind FROM fts ORDER BY rank
    """
)

# The vector side, fused with the full-text side's ranked ids (:text_ids, rank = position),
# and the rows of the top k. Without a query vector (:qvec NULL) the vector side is empty
# (a one-time filter: the HNSW index is not scanned) and the full-text ranks alone decide.
FUSED_SQL = sa.text(
    """
    WITH vec_candidates AS (
        SELECT id, embedding <=> CAST(:qvec AS vector) AS distance
          FROM knowledge_nodes
         WHERE CAST(:qvec AS vector) IS NOT NULL
           AND embedding IS NOT NULL
           AND (CAST(:topics AS text[]) IS NULL OR topic_id = ANY(CAST(:topics AS text[])))
           AND (CAST(:kinds AS text[]) IS NULL OR kind = ANY(CAST(:kinds AS text[])))
         ORDER BY embedding <=> CAST(:qvec AS vector)
         LIMIT :candidates
    ),
    vec AS (
        SELECT id, 1 - distance AS similarity, row_number() OVER (ORDER BY distance) AS rank
          FROM vec_candidates
    ),
    fts AS (
        SELECT id, rank FROM unnest(CAST(:text_ids AS text[])) WITH ORDINALITY AS t(id, rank)
    ),
    fused AS (
        SELECT COALESCE(vec.id, fts.id) AS id, vec.similarity, vec.rank AS vector_rank,
               fts.rank AS text_rank,
               COALESCE(CAST(:wv AS float8) / (CAST(:rrf_k AS float8) + vec.rank), 0)
             + COALESCE(CAST(:wt AS float8) / (CAST(:rrf_k AS float8) + fts.rank), 0) AS score
          FROM vec FULL OUTER JOIN fts ON fts.id = vec.id
         WHERE fts.id IS NOT NULL OR vec.similarity >= CAST(:floor AS float8)
    ),
    top AS (
        SELECT * FROM fused ORDER BY score DESC, id LIMIT :k
    )
    SELECT n.id, n.title, n.topic_id, t.title AS topic_title, n.kind, n.content, f.score,
           COALESCE(f.similarity, 1 - (n.embedding <=> CAST(:qvec AS vector))) AS similarity,
           f.text_rank, f.vector_rank
      FROM top f JOIN knowledge_nodes n ON n.id = f.id
      LEFT JOIN topics t ON t.id = n.topic_id
     ORDER BY f.score DESC, n.id
    """
)


def text_match_cap(params: RetrievalParams, n_terms: int) -> int:
    """How many full-text matches are ranked for a query of `n_terms` terms."""
    return max(params.candidates, min(params.text_match_cap, params.text_work // max(n_terms, 1)))


def _configure_hnsw(conn: sa.Connection, params: RetrievalParams) -> None:
    """The HNSW settings `params` ask for, unless the connection already has them (set
    once when it was opened); otherwise set_config(..., is_local => true) scopes them to
    this transaction, so the connection goes back to the pool as it came."""
    wanted = {"hnsw.ef_search": str(params.ef_search), "hnsw.iterative_scan": params.iterative_scan}
    if conn.info.get(SESSION_SETTINGS_KEY) == wanted:
        return
    conn.execute(
        sa.text("SELECT set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', :scan, true)"),
        {"ef": wanted["hnsw.ef_search"], "scan": wanted["hnsw.iterative_scan"]},
    )


def full_text_ranks(conn: sa.Connection, query_text: str, params: RetrievalParams) -> list[str]:
    """The full-text side: ids of at most `candidates` matching nodes, best first."""
    return [node_id for node_id, _ in full_text_candidates(conn, query_text, params)]


def full_text_candidates(conn: sa.Connection, query_text: str, params: RetrievalParams) -> list[tuple[str, str]]:
    """`full_text_ranks` with each node's kind: chat reads the full-text side for every
    kind before the intent is known and keeps the kinds it wants afterwards
    (`of_kinds`), without another statement."""
    if params.k <= 0:
        return []
    terms = query_terms(query_text, params.max_query_terms)
    rows = conn.execute(
        FULL_TEXT_SQL,
        {
            "qtext": " ".join(terms),
            "topics": list(params.topic_ids) if params.topic_ids else None,
            "kinds": list(params.kinds) if params.kinds else None,
            "candidates": params.candidates,
            "text_match_cap": text_match_cap(params, len(terms)),
        },
    )
    return [(row.id, row.kind) for row in rows]


def of_kinds(candidates: Sequence[tuple[str, str]], kinds: Sequence[str] | None) -> list[str]:
    """The ids of the candidates of the wanted kinds (all when None), in their order: the
    full-text ranks the search restricted to those kinds would have given, up to its
    match cap."""
    return [node_id for node_id, kind in candidates if kinds is None or kind in kinds]


def fused_search(
    conn: sa.Connection, text_ids: Sequence[str], query_vector: np.ndarray | None, params: RetrievalParams
) -> list[RetrievedNode]:
    """Top-k nodes: the vector side fused with `full_text_ranks`' ids (the same `params`).

    Without a query vector (the encoder is unavailable) the full-text ranks alone decide:
    retrieval degrades to exact terms instead of failing. Call inside a transaction
    (non-default HNSW settings are SET LOCAL).
    """
    if params.k <= 0:
        return []
    if query_vector is not None:
        _configure_hnsw(conn, params)
    rows = conn.execute(
        FUSED_SQL,
        {
            # One text rendering for the statement's two uses of the vector (pgvector's
            # text form is ~7 KB; each rendering costs ~0.2 ms of Python).
            "qvec": None if query_vector is None else _vector_text(query_vector),
            "text_ids": list(text_ids),
            "topics": list(params.topic_ids) if params.topic_ids else None,
            "kinds": list(params.kinds) if params.kinds else None,
            "candidates": params.candidates,
            "rrf_k": float(params.rrf_k),
            "wv": params.vector_weight,
            "wt": params.text_weight,
            "floor": params.similarity_floor,
            "k": params.k,
        },
    ).mappings()
    return [
        RetrievedNode(
            id=r["id"],
            title=r["title"],
            topic_id=r["topic_id"],
            kind=r["kind"],
            content=r["content"],
            score=float(r["score"]),
            similarity=None if r["similarity"] is None else float(r["similarity"]),
            text_rank=r["text_rank"],
            vector_rank=r["vector_rank"],
            topic_title=r["topic_title"],
        )
        for r in rows
    ]


def hybrid_search(
    conn: sa.Connection, query_text: str, query_vector: np.ndarray | None, params: RetrievalParams
) -> list[RetrievedNode]:
    """Top-k nodes for the query: `full_text_ranks`, then `fused_search`."""
    if params.k <= 0:
        return []
    return fused_search(conn, full_text_ranks(conn, query_text, params), query_vector, params)


def _vector_text(vector: np.ndarray) -> str:
    from pgvector import Vector

    return str(Vector(np.asarray(vector, dtype=np.float32)).to_text())


def vector_search(
    conn: sa.Connection,
    query_vector: np.ndarray,
    k: int,
    *,
    exact: bool = False,
    ef_search: int = DEFAULT_EF_SEARCH,
) -> list[str]:
    """Ids of the k nearest nodes by cosine distance; `exact` bypasses the index
    (the ground truth that recall@k of the HNSW index is measured against)."""
    if exact:
        conn.execute(sa.text("SELECT set_config('enable_indexscan', 'off', true)"))
    else:
        conn.execute(sa.text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef_search)})
    rows = conn.execute(
        sa.text(
            """SELECT id FROM knowledge_nodes WHERE embedding IS NOT NULL
                ORDER BY embedding <=> CAST(:q AS vector) LIMIT :k"""
        ),
        {"q": np.asarray(query_vector, dtype=np.float32), "k": k},
    ).scalars()
    return list(rows)
