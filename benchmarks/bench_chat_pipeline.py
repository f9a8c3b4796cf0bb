"""The chat pipeline before the LLM, and retrieval quality, on a real documentation corpus.

    .venv/bin/python benchmarks/doc_corpus.py                        # once: .state/corpus (~5 min)
    nice -n 10 .venv/bin/python benchmarks/corpus_embeddings.py      # once: the chunks' vectors
    .venv/bin/python benchmarks/bench_chat_pipeline.py [--sizes 1000 10000 100000] [--queries 300]
        [--message-chars 4000] [--reuse] [--corpus .state/corpus]

The corpus (`doc_corpus.py`) is technical documentation from Debian -doc packages,
chunked as migrate_vectors chunks it, with queries that are held-out sentences of known
chunks. For each size: a fresh database on the embedded server (in .state/bench) loaded
with a seeded sample of that many chunks by `shared.rag.knowledge_base.migrate_nodes`
(the migrate_vectors load, vectors from the cache: load rate without the encoder), then:

- the pipeline: the queries as 8-turn conversations through `ChatPipeline.prepare`
  (encode, intent, session, confusion, retrieval, mastery, prompt), p50/p95 per stage;
- recall@10 of the HNSW index against exact search, per `hnsw.ef_search`, with the
  vector statement's latency;
- retrieval quality: hit@1, hit@5 and MRR@10 of the chunk each query was written from,
  for the vector side only, full text only and the fused (RRF) list;
- the retrieval statement alone, per lever (`--levers`).

Each turn's message is a held-out sentence as it is (a student's question; 25 tokens on
average), and every turn is encoded: the embedding cache is emptied after the warm-up,
and a sentence that comes round again (more turns than queries) gets a `(i of size)`
tag so that it is unseen text. `--tag-messages` tags every message, as the benchmark did
until session 11 (~8 tokens more per message: ~0.6 ms more per transformer pass), for
comparison with those figures.

`--message-chars N` makes every message about N characters long (the question, then
course sentences a student might paste around it): what one long message costs.
Budget: p95 <= 25 ms and p50 <= 12 ms before the LLM at 100k chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("STATE_DIR", str(REPO / ".state" / "bench"))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

COURSE_ID = "docs"


def corpus_sample(corpus: Path, size: int) -> tuple[list[dict], np.ndarray, list[dict]]:
    """`size` chunks with their cached vectors (the first `size` of the embedding order, a
    seeded random sample) and the queries whose chunk is among them."""
    from corpus_embeddings import corpus_texts, load_embeddings

    nodes = json.loads((corpus / "nodes.json").read_text())["nodes"]
    indices, vectors = load_embeddings(corpus, corpus_texts(nodes))
    if size > len(indices):
        raise SystemExit(
            f"{len(indices)} of the corpus' {len(nodes)} chunks are embedded, fewer than {size}: "
            "run (or resume) benchmarks/corpus_embeddings.py"
        )
    chosen = [nodes[i] for i in indices[:size]]
    ids = {n["id"] for n in chosen}
    queries = [q for q in json.loads((corpus / "queries.json").read_text()) if q["node_id"] in ids]
    return chosen, np.asarray(vectors[:size], dtype=np.float32), queries


def fill(engine: sa.Engine, nodes: list[dict], vectors: np.ndarray, model_name: str, embed=None) -> dict:
    """Load through migrate_nodes (the migrate_vectors path), the encoder replaced by the
    vector cache, so the figure is the loader's own rate. (`embed` embeds what the cache
    lacks: only when an older loader splits the corpus' longest chunks again.)"""
    import inspect

    from shared.knowledge_text import node_text
    from shared.rag.knowledge_base import migrate_nodes, normalize_node

    topics = sorted({n["topic_id"] for n in nodes})
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO courses (id, title) VALUES (:c, 'Documentation') ON CONFLICT DO NOTHING"),
            {"c": COURSE_ID},
        )
        conn.execute(
            sa.text(
                "INSERT INTO topics (id, course_id, title) SELECT t, :c, split_part(t, ':', 2) || ' (' "
                "|| split_part(t, ':', 1) || ')' FROM unnest(CAST(:t AS text[])) AS t ON CONFLICT DO NOTHING"
            ),
            {"c": COURSE_ID, "t": topics},
        )
    sources = [normalize_node(n["id"], n) for n in nodes]  # as migrate_vectors reads them
    by_text = {node_text(n.title, n.content): i for i, n in enumerate(sources)}

    def cached(texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in by_text]
        extra = dict(zip(missing, embed(missing), strict=True)) if missing and embed else {}
        return np.stack([vectors[by_text[t]] if t in by_text else extra[t] for t in texts])

    # the corpus' records are chunk_node's chunks already (a few exceed 180 words, as
    # chunk_node makes them from long sentences): stored as they are, not split again
    whole = {"max_chunk_words": 1 << 30} if "max_chunk_words" in inspect.signature(migrate_nodes).parameters else {}
    t0 = time.perf_counter()
    summary = migrate_nodes(engine, sources, cached, model_name, batch_size=2000, **whole)
    seconds = time.perf_counter() - t0
    return {
        "load_s": round(seconds, 1),
        "nodes_per_s": round(len(nodes) / seconds),
        "write_s": round(getattr(summary, "write_seconds", 0.0), 1),
        "index_s": round(getattr(summary, "index_seconds", 0.0), 1),
        "embedded": summary.embedded,
        "indexes_built": getattr(summary, "indexes_built", None),
    }


def long_message(question: str, chars: int, rng: random.Random) -> str:
    """The question inside about `chars` characters of course prose (distinct sentences,
    so full text sees hundreds of real terms, as with a pasted page of notes)."""
    if chars <= len(question):
        return question
    course = json.loads((REPO / "local" / "demo" / "course.json").read_text())
    sentences = [s for n in course["nodes"] for s in re.split(r"(?<=[.!?])\s+", n["content"])]
    rng.shuffle(sentences)
    padding, total = [], len(question)
    for sentence in sentences:
        if total + len(sentence) + 1 > chars:
            break
        padding.append(sentence)
        total += len(sentence) + 1
    half = len(padding) // 2
    return " ".join([*padding[:half], question, *padding[half:]])[:chars]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def summary_ms(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


def open_database(size: int, reuse: bool, prefix: str = "bench_docs") -> tuple[sa.Engine, bool]:
    """The benchmark database of this size (dropped and recreated unless `reuse` and full)."""
    from shared.config import get_settings, reset_settings_cache
    from shared.db.engine import create_engine, ensure_database, set_engine
    from shared.db.migrate import upgrade

    reset_settings_cache()
    settings = get_settings()
    name = f"{prefix}_{size}"
    base = create_engine(settings)
    server_url = base.url.set(database="postgres").render_as_string(hide_password=False)
    base.dispose()
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if exists and not reuse:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    ensure_database(server_url, name)
    url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(settings.model_copy(update={"database_url": url}))
    set_engine(engine)
    upgrade(engine)
    with engine.connect() as conn:
        loaded = conn.execute(sa.text("SELECT count(*) FROM knowledge_nodes")).scalar()
    return engine, reuse and loaded == size


def vector_recall(engine: sa.Engine, vectors: np.ndarray, ef_values: list[int], k: int = 10) -> dict:
    """recall@k of the HNSW index against exact search per ef_search, counted by distance
    (an approximate hit as close as the exact k-th neighbour is a true one), and the
    vector statement's latency."""
    from shared.rag.retrieval import vector_search

    def distances(conn: sa.Connection, vec: np.ndarray, ids: list[str]) -> list[float]:
        rows = conn.execute(
            sa.text("SELECT id, embedding <=> CAST(:q AS vector) AS d FROM knowledge_nodes WHERE id = ANY(:ids)"),
            {"q": vec, "ids": ids},
        ).all()
        by_id = {r.id: float(r.d) for r in rows}
        return [by_id[i] for i in ids]

    exact_kth = []
    for vec in vectors:
        with engine.begin() as conn:
            ids = vector_search(conn, vec, k, exact=True)
        with engine.begin() as conn:
            exact_kth.append(distances(conn, vec, ids)[-1])
    out = {}
    for ef in ef_values:
        recalls, ms = [], []
        for vec, kth in zip(vectors, exact_kth, strict=True):
            with engine.begin() as conn:
                t0 = time.perf_counter()
                ids = vector_search(conn, vec, k, ef_search=ef)
                ms.append((time.perf_counter() - t0) * 1000)
            with engine.begin() as conn:
                found = distances(conn, vec, ids)
            recalls.append(sum(d <= kth + 1e-6 for d in found) / k)
        out[ef] = {"recall@10": round(float(np.mean(recalls)), 4), "ms": summary_ms(ms)}
    return out


def retrieval_quality(engine: sa.Engine, queries: list[dict], vectors: np.ndarray, params: object) -> dict:
    """hit@1, hit@5 and MRR@10 of the chunk each query was written from: vector side only,
    full text only, and the fused list; with the fused statement's latency."""
    from dataclasses import replace

    from shared.rag.retrieval import RetrievalParams, hybrid_search, vector_search

    assert isinstance(params, RetrievalParams)
    p10 = replace(params, k=10, similarity_floor=-1.0)
    ranks: dict[str, list[int | None]] = {"vector": [], "text": [], "fused": []}
    ms: list[float] = []
    for q, vec in zip(queries, vectors, strict=True):
        with engine.begin() as conn:
            vec_ids = vector_search(conn, vec, 10, ef_search=params.ef_search)
        with engine.begin() as conn:
            text_ids = [n.id for n in hybrid_search(conn, q["query"], None, p10)]
        with engine.begin() as conn:
            t0 = time.perf_counter()
            fused_ids = [n.id for n in hybrid_search(conn, q["query"], vec, p10)]
            ms.append((time.perf_counter() - t0) * 1000)
        for name, ids in (("vector", vec_ids), ("text", text_ids), ("fused", fused_ids)):
            ranks[name].append(ids.index(q["node_id"]) + 1 if q["node_id"] in ids else None)
    out: dict = {"queries": len(queries), "fused_ms": summary_ms(ms)}
    for name, rs in ranks.items():
        out[name] = {
            "hit@1": round(sum(r == 1 for r in rs) / len(rs), 4),
            "hit@5": round(sum(r is not None and r <= 5 for r in rs) / len(rs), 4),
            "mrr@10": round(sum(1 / r for r in rs if r) / len(rs), 4),
        }
    return out


def turn_message(texts: list[str], i: int, size: int, tag: bool) -> str:
    """Turn i's question: the held-out sentence, tagged when it comes round again (or when
    `tag`), so that no turn's text has been embedded before."""
    text = texts[i % len(texts)]
    return f"{text} ({i} of {size})" if tag or i >= len(texts) else text


def pipeline_stages(
    engine: sa.Engine, texts: list[str], n_queries: int, message_chars: int, size: int, tag: bool = False
) -> dict:
    """The queries through ChatPipeline.prepare as 8-turn conversations; p50/p95 per stage."""
    from shared.chat import conversation
    from shared.chat.pipeline import ChatInput, ChatPipeline
    from shared.embeddings.service import get_embedding_service
    from shared.http.auth import Principal

    service = get_embedding_service()
    if service.shared_cache is not None:
        raise SystemExit("unset REDIS_URL: a shared embedding cache would answer turns the benchmark means to encode")

    pipeline = ChatPipeline(engine=lambda: engine)
    user = Principal("bench-student")
    for q in texts[:4]:  # warm-up: lazy initialisation, first sessions
        pipeline.prepare(user, ChatInput(q), "warm")
    service.cache.clear()  # the warm-up's and any earlier size's vectors: every turn below is encoded
    rng = random.Random(1)
    stages: dict[str, list[float]] = {}
    sessions: list = []
    for i in range(n_queries):
        q = long_message(turn_message(texts, i, size, tag), message_chars, rng)
        session = sessions[-1] if sessions and i % 8 else None
        turn = pipeline.prepare(user, ChatInput(q, session_id=session), f"b{i}")
        if session is None:
            sessions.append(turn.session_id)
        with engine.begin() as conn:  # the turn's messages feed the next turn's confusion window
            conversation.record_turn(conn, turn.session_id, q, turn.query_vector, "(reply)", None)
        for stage, ms in turn.timings.items():
            stages.setdefault(stage, []).append(ms)
    return {s: summary_ms(v) for s, v in stages.items()}


def run(args: argparse.Namespace, size: int) -> dict:
    from shared.config import get_settings
    from shared.embeddings.service import get_embedding_service
    from shared.models.registry import get_registry
    from shared.rag.retrieval import RetrievalParams

    nodes, vectors, queries = corpus_sample(args.corpus, size)
    engine, reuse = open_database(size, args.reuse, args.db_prefix)
    service = get_embedding_service()
    if get_registry().version is None:
        raise SystemExit(f"no model version published in {get_settings().model_store}: run `make models` first")
    if reuse:
        load: dict = {"reused": True}
        print(f"  reusing the {size} chunks already loaded", file=sys.stderr)
    else:
        load = fill(engine, nodes, vectors, service.model_name, service.embed)
        print(f"  {size} chunks loaded: {load}", file=sys.stderr)
    texts = [q["query"] for q in json.loads((args.corpus / "queries.json").read_text())]
    result: dict = {
        "nodes": size,
        "queries": args.queries,
        "message_chars": args.message_chars,
        "tagged_messages": args.tag_messages,
        "load": load,
    }
    result["stages"] = pipeline_stages(engine, texts, args.queries, args.message_chars, size, args.tag_messages)
    print(f"  stages: {result['stages']}", file=sys.stderr)
    quality_queries = queries[: args.quality_queries]
    qvecs = service.embed([q["query"] for q in quality_queries]) if quality_queries else np.zeros((0, 384))
    recall_vectors = qvecs[: args.recall_queries]
    result["recall"] = vector_recall(engine, recall_vectors, args.ef_search) if len(recall_vectors) else {}
    print(f"  recall: {result['recall']}", file=sys.stderr)
    if quality_queries:
        result["quality"] = retrieval_quality(engine, quality_queries, qvecs, RetrievalParams())
        print(f"  quality: {result['quality']}", file=sys.stderr)
        result["levers"] = {}
        for lever in args.levers:
            name, value = lever.split("=")
            params = RetrievalParams(**{name: type(getattr(RetrievalParams(), name))(value)})
            result["levers"][lever] = retrieval_quality(engine, quality_queries, qvecs, params)
            print(f"  lever {lever}: {result['levers'][lever]}", file=sys.stderr)
    engine.dispose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "corpus")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300, help="pipeline turns per size")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--quality-queries", type=int, default=500)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 64, 100, 200])
    parser.add_argument("--reuse", action="store_true", help="keep a database already filled by a previous run")
    parser.add_argument("--message-chars", type=int, default=0, help="pad every message to about this many chars")
    parser.add_argument(
        "--tag-messages", action="store_true", help="tag every message with '(i of size)', as before session 12"
    )
    parser.add_argument(
        "--levers",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="RetrievalParams variants to measure quality and latency for, e.g. text_match_cap=200 ef_search=100",
    )
    parser.add_argument("--db-prefix", default="bench_docs", help="databases are named <prefix>_<size>")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    from shared.logs import configure_logging

    configure_logging("WARNING")
    results = [run(args, size) for size in args.sizes]
    for r in results:
        length = f", messages of ~{r['message_chars']} chars" if r["message_chars"] else ""
        length += ", every message tagged" if r["tagged_messages"] else ""
        print(f"\n== {r['nodes']} chunks, {r['queries']} turns{length}; load {r['load']}")
        print(f"{'stage':<16}{'p50 ms':>10}{'p95 ms':>10}")
        for stage, v in r["stages"].items():
            print(f"{stage:<16}{v['p50']:>10.2f}{v['p95']:>10.2f}")
        for ef, v in r["recall"].items():
            print(f"ef_search {ef:<5} recall@10 {v['recall@10']:.4f}  vector statement p50 {v['ms']['p50']} ms")
        if "quality" in r:
            q = r["quality"]
            print(f"quality over {q['queries']} held-out-sentence queries (fused statement {q['fused_ms']} ms):")
            for name in ("vector", "text", "fused"):
                print(f"  {name:<7} {q[name]}")
        for lever, q in r.get("levers", {}).items():
            print(f"lever {lever}: fused {q['fused']} text {q['text']} statement {q['fused_ms']} ms")
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
