"""How fast `migrate_vectors` loads a course library: chunks/s of the database side.

    .venv/bin/python benchmarks/bench_knowledge_load.py [--size 100000] [--random-vectors]

Loads `--size` chunks of the documentation corpus (`benchmarks/doc_corpus.py`) into a
fresh database through `shared.rag.knowledge_base.migrate_nodes` (binary COPY per batch,
indexes dropped and built once after a bulk load), the encoder replaced by the cached
vectors (`benchmarks/corpus_embeddings.py`), so the figure is the loader's own rate;
embedding is measured apart (chunks/s printed by corpus_embeddings.py). Then runs the
same load again to show the idempotent re-run (everything unchanged, nothing written).

`--random-vectors` uses seeded random unit vectors instead of the cache, for sizes the
cache does not cover yet: COPY cost is the same, and an HNSW build over random vectors
is no faster than over real embeddings (no clusters to exploit), so it bounds the real
build time from above. Every printed result says which vectors were used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from bench_chat_pipeline import fill, open_database  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "corpus")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--random-vectors", action="store_true")
    parser.add_argument("--maintenance-work-mem", default="1GB")
    args = parser.parse_args()
    from bench_chat_pipeline import corpus_sample

    from shared.logs import configure_logging
    from shared.rag.knowledge_base import migrate_nodes, normalize_node

    configure_logging("WARNING")
    if args.random_vectors:
        nodes = json.loads((args.corpus / "nodes.json").read_text())["nodes"][: args.size]
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(nodes), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    else:
        nodes, vectors, _ = corpus_sample(args.corpus, args.size)
    engine, _ = open_database(len(nodes), reuse=False, prefix="bench_load")
    result = {"chunks": len(nodes), "vectors": "random" if args.random_vectors else "cached encoder"}
    result["first_load"] = fill(engine, nodes, vectors, "bench-load")
    t0 = time.perf_counter()
    again = migrate_nodes(
        engine,
        (normalize_node(n["id"], n) for n in nodes),
        lambda texts: vectors[: len(texts)],
        "bench-load",
        batch_size=2000,
        max_chunk_words=1 << 30,
    )
    rerun = {k: v for k, v in again.as_dict().items() if k != "bad_nodes"}
    result["rerun"] = {"seconds": round(time.perf_counter() - t0, 1), **rerun}
    with engine.connect() as conn:
        result["rows"] = conn.execute(sa.text("SELECT count(*) FROM knowledge_nodes")).scalar()
        result["table_mb"] = round(
            conn.execute(sa.text("SELECT pg_total_relation_size('knowledge_nodes')")).scalar() / 2**20, 1
        )
    engine.dispose()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
