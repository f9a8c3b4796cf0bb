"""Is retrieval healthy? Seeded queries must find their nodes, and the HNSW index
must agree with exact search.

    python -m shared.rag.health_check [--queries FILE] [--k 5] [--min-recall 0.9]

A queries file is a JSON list of {"query", "expect_any": [node ids], "topic"?}.
Exit 0 when every query finds one of its expected nodes in the top k and
recall@10 of the index is at least --min-recall; 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from shared.rag.retrieval import DEFAULT_EF_SEARCH, RetrievalParams, hybrid_search, vector_search

DEFAULT_QUERIES = Path(__file__).resolve().parents[2] / "local" / "demo" / "rag_health_queries.json"


@dataclass
class QueryResult:
    query: str
    ok: bool
    expected: list[str]
    got: list[str]


def run_queries(
    engine: sa.Engine, queries: Sequence[dict[str, Any]], embed: Callable[[Sequence[str]], np.ndarray], k: int
) -> list[QueryResult]:
    vectors = embed([q["query"] for q in queries])
    results = []
    for q, vec in zip(queries, vectors, strict=True):
        params = RetrievalParams(k=k, topic_ids=[q["topic"]] if q.get("topic") else None)
        with engine.begin() as conn:
            got = [n.id for n in hybrid_search(conn, q["query"], vec, params)]
        expected = list(q["expect_any"])
        results.append(QueryResult(q["query"], bool(set(got) & set(expected)), expected, got))
    return results


def _distances(conn: sa.Connection, vec: np.ndarray, ids: list[str]) -> list[float]:
    rows = conn.execute(
        sa.text("SELECT embedding <=> CAST(:q AS vector) FROM knowledge_nodes WHERE id = ANY(CAST(:ids AS text[]))"),
        {"q": vec, "ids": ids},
    ).scalars()
    return sorted(float(d) for d in rows)


def index_recall(
    engine: sa.Engine, query_vectors: np.ndarray, k: int = 10, ef_search: int = DEFAULT_EF_SEARCH
) -> float:
    """Mean recall@k of the HNSW index against exact (sequential) search.

    Counted by distance, not by id: an approximate hit as close as the exact k-th
    neighbour is a true neighbour. With near-duplicate nodes many are tied, and
    exact search's choice among ties is arbitrary, so id overlap would understate recall.
    """
    recalls = []
    for vec in query_vectors:
        with engine.begin() as conn:
            exact = vector_search(conn, vec, k, exact=True)
            kth = _distances(conn, vec, exact)[-1] if exact else None
        with engine.begin() as conn:
            approx = vector_search(conn, vec, k, ef_search=ef_search)
        if exact and kth is not None:
            with engine.connect() as conn:
                found = _distances(conn, vec, approx)
            recalls.append(sum(d <= kth + 1e-6 for d in found) / len(exact))
    return float(np.mean(recalls)) if recalls else 1.0


def sample_node_queries(engine: sa.Engine, n: int, seed: int = 0) -> np.ndarray:
    """Query vectors near stored nodes (a node's vector plus noise), for recall."""
    with engine.connect() as conn:
        rows = (
            conn.execute(sa.text("SELECT embedding FROM knowledge_nodes WHERE embedding IS NOT NULL ORDER BY id"))
            .scalars()
            .all()
        )
    if not rows:
        return np.zeros((0, 384), dtype=np.float32)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    vectors = np.stack([rows[i] for i in picks]) + rng.normal(scale=0.05, size=(len(picks), len(rows[0])))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.rag.health_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--min-recall", type=float, default=0.9)
    parser.add_argument("--recall-queries", type=int, default=100)
    args = parser.parse_args(argv)

    from shared.db.engine import get_engine
    from shared.embeddings.service import get_embedding_service
    from shared.logs import configure_logging

    configure_logging("WARNING")
    engine = get_engine()
    queries = json.loads(args.queries.read_text(encoding="utf-8"))
    results = run_queries(engine, queries, get_embedding_service().embed, args.k)
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        print(f"{mark} {r.query!r}: top-{args.k} {r.got} (expected any of {r.expected})")
    recall = index_recall(engine, sample_node_queries(engine, args.recall_queries))
    passed = sum(r.ok for r in results)
    print(f"\nqueries: {passed}/{len(results)} found a relevant node; HNSW recall@10 vs exact: {recall:.3f}")
    return 0 if passed == len(results) and recall >= args.min_recall else 1


if __name__ == "__main__":
    sys.exit(main())
