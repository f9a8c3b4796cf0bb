"""The full-text side of retrieval alone, at any size the loader reached (no vectors needed).

    .venv/bin/python benchmarks/bench_full_text.py [--database bench_load_100000] [--queries 100]
        [--variant text_match_cap=3000,text_work=12000 ...] [--uncapped]

Runs `hybrid_search` without a query vector (the text side, as the chat runs it when the
encoder is down, and as it enters the fusion) for the held-out-sentence queries of the
documentation corpus whose chunk is in the database, and prints hit@5, MRR@10 and the
statement's p50/p95. `--uncapped` adds the reference: every match ranked by
`ts_rank(…, 1)`, no cap (what the cap and the rare-term matching approximate).
The database is one the benchmarks filled, e.g. by `bench_knowledge_load.py --size
100000 --random-vectors` (full text ignores the vectors); it is migrated and its term
counts refreshed first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("STATE_DIR", str(REPO / ".state" / "bench"))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "corpus")
    parser.add_argument("--database", default="bench_load_100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--variant", nargs="*", default=[], help="RetrievalParams fields, e.g. text_match_cap=3000")
    parser.add_argument("--uncapped", action="store_true")
    args = parser.parse_args()
    from shared.config import get_settings
    from shared.db.engine import create_engine
    from shared.db.migrate import upgrade
    from shared.logs import configure_logging
    from shared.rag.retrieval import QUERY_TSQUERY, RetrievalParams, hybrid_search, query_terms
    from shared.rag.term_stats import refresh_term_stats

    configure_logging("WARNING")
    settings = get_settings()
    base = create_engine(settings)
    url = base.url.set(database=args.database).render_as_string(hide_password=False)
    base.dispose()
    engine = create_engine(settings.model_copy(update={"database_url": url}))
    upgrade(engine)
    with engine.begin() as conn:
        refresh_term_stats(conn)
        ids = set(conn.execute(sa.text("SELECT id FROM knowledge_nodes")).scalars())
    queries = [q for q in json.loads((args.corpus / "queries.json").read_text()) if q["node_id"] in ids]
    queries = queries[: args.queries]
    print(f"{len(ids)} chunks, {len(queries)} queries")

    def score(label: str, search: Callable[[dict], list[str]]) -> None:
        ranks, ms = [], []
        for q in queries:
            t0 = time.perf_counter()
            found = search(q)
            ms.append((time.perf_counter() - t0) * 1000)
            ranks.append(found.index(q["node_id"]) + 1 if q["node_id"] in found else None)
        hit5 = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
        mrr = sum(1 / r for r in ranks if r) / len(ranks)
        p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
        print(f"{label:<44} hit@5 {hit5:.3f}  MRR@10 {mrr:.4f}  p50 {p50:.1f} ms  p95 {p95:.1f} ms")

    for variant in ["", *args.variant]:
        fields = dict(kv.split("=") for kv in variant.split(",") if kv)
        params = RetrievalParams(k=10, **{k: type(getattr(RetrievalParams(), k))(v) for k, v in fields.items()})

        def text_side(q: dict, params: RetrievalParams = params) -> list[str]:
            with engine.begin() as conn:
                return [n.id for n in hybrid_search(conn, q["query"], None, params)]

        score(f"text side {variant or '(defaults)'}", text_side)
    if args.uncapped:

        def uncapped(q: dict) -> list[str]:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text(
                            f"SELECT n.id FROM knowledge_nodes n, {QUERY_TSQUERY} q WHERE n.search_tsv @@ q "
                            "ORDER BY ts_rank(n.search_tsv, q, 1) DESC LIMIT 10"
                        ),
                        {"qtext": " ".join(query_terms(q["query"], RetrievalParams().max_query_terms))},
                    ).scalars()
                )

        score("every match ranked, no cap (reference)", uncapped)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
