"""The chat pipeline without the LLM call, at 1k and 100k knowledge nodes.

    .venv/bin/python benchmarks/bench_chat_pipeline.py [--sizes 1000 100000] [--queries 300]
        [--message-chars 4000] [--reuse]

For each size: a fresh database on the embedded server (in .state/bench), filled with
synthetic nodes recombined from the demo course's sentences and embedded by the
published INT8 encoder; then real student-like queries through `ChatPipeline.prepare`
(encode, intent, session, confusion, retrieval, mastery, prompt), reporting p50/p95 per
stage and in total, plus recall@10 of the HNSW index against exact search.
`--message-chars N` makes every message about N characters long (the question, then
course sentences a student might paste around it): what one long message costs.
Budget (DESIGN.md): p95 well under 200 ms; aim 25 ms at 100k nodes.
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
os.environ.setdefault("STATE_DIR", str(REPO / ".state" / "bench"))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

QUERIES = [
    "how does a for loop work?",
    "why does my while loop never stop",
    "I get IndexError: list index out of range",
    "what is the difference between = and ==",
    "explain F = m a with an example",
    "quiz me on dictionaries",
    "summarize what we covered about functions",
    "I still don't get recursion",
    "why does my function return None",
    "what does range(1, 5) give",
    "KeyError when reading my dict",
    "how do I compute acceleration from velocity",
    "what is Newton's third law",
    "give me a practice problem on lists",
    "can you recap kinematics equations",
    "my code crashes with ZeroDivisionError",
]


def synthetic_nodes(n: int, seed: int = 0) -> list[dict]:
    """Nodes recombined from the demo course's sentences: realistic words and lengths."""
    course = json.loads((REPO / "local" / "demo" / "course.json").read_text())
    by_topic: dict[str, list[str]] = {}
    for node in course["nodes"]:
        by_topic.setdefault(node["topic_id"], []).extend(
            s for s in re.split(r"(?<=[.!?])\s+", node["content"]) if len(s.split()) > 3
        )
    topics = sorted(by_topic)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = topics[i % len(topics)]
        sentences = rng.sample(by_topic[topic], k=min(len(by_topic[topic]), rng.randint(3, 6)))
        out.append(
            {"id": f"syn-{i:06d}", "topic_id": topic, "title": sentences[0][:60], "content": " ".join(sentences)}
        )
    return out


def fill(engine: sa.Engine, n: int, embed, model_name: str) -> float:
    from shared.curriculum import load_course_data

    course = json.loads((REPO / "local" / "demo" / "course.json").read_text())
    t0 = time.perf_counter()
    with engine.begin() as conn:
        load_course_data(conn, {"courses": course["courses"], "questions": course["questions"], "nodes": []})
        conn.execute(sa.text("DROP INDEX IF EXISTS knowledge_nodes_embedding_hnsw"))
    nodes = synthetic_nodes(n)
    batch = 512
    for start in range(0, n, batch):
        chunk = nodes[start : start + batch]
        vectors = embed([f"{c['title']}. {c['content']}" for c in chunk])
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    """INSERT INTO knowledge_nodes (id, source_id, topic_id, title, content, content_hash,
                                                embedding, embedding_model)
                   VALUES (:id, :id, :topic_id, :title, :content, 'bench', :embedding, :model)"""
                ),
                [{**c, "embedding": v, "model": model_name} for c, v in zip(chunk, vectors, strict=True)],
            )
        print(f"  embedded and loaded {min(start + batch, n)}/{n}", end="\r", file=sys.stderr)
    with engine.begin() as conn:  # building the index after the load is much faster than per row
        conn.execute(sa.text("SET maintenance_work_mem = '512MB'"))
        conn.execute(
            sa.text(
                """CREATE INDEX knowledge_nodes_embedding_hnsw ON knowledge_nodes
               USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"""
            )
        )
        conn.execute(sa.text("ANALYZE knowledge_nodes"))
    return time.perf_counter() - t0


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


def run(size: int, n_queries: int, reuse: bool = False, message_chars: int = 0) -> dict:
    from shared.chat import conversation
    from shared.chat.pipeline import ChatInput, ChatPipeline
    from shared.config import get_settings, reset_settings_cache
    from shared.db.engine import create_engine, ensure_database, set_engine
    from shared.db.migrate import upgrade
    from shared.embeddings.service import get_embedding_service
    from shared.http.auth import Principal
    from shared.models.registry import get_registry
    from shared.rag.health_check import index_recall

    reset_settings_cache()
    settings = get_settings()
    name = f"bench_{size}"
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
        loaded = conn.execute(sa.text("SELECT count(*) FROM knowledge_nodes WHERE content_hash = 'bench'")).scalar()
    reuse = reuse and loaded == size

    service = get_embedding_service()
    registry = get_registry()
    if registry.version is None:
        raise SystemExit(f"no model version published in {settings.model_store}: run `make models` first")
    if reuse:
        load_s = 0.0
        print(f"  reusing the {size} nodes already loaded in {name}", file=sys.stderr)
    else:
        load_s = fill(engine, size, service.embed, service.model_name)
        print(f"\n  {size} nodes loaded + indexed in {load_s:.1f} s", file=sys.stderr)

    pipeline = ChatPipeline(engine=lambda: engine)
    user = Principal("bench-student")
    stages: dict[str, list[float]] = {}
    # Warm-up: first calls pay for session creation and lazy initialisation.
    for q in QUERIES[:4]:
        pipeline.prepare(user, ChatInput(q), "warm")
    rng = random.Random(1)
    sessions: list = []
    for i in range(n_queries):
        # Conversations of ~8 turns (new session, then follow-ups), like real use; unseen
        # text each time, so the embedding cache does not flatter the encoder.
        q = long_message(f"{rng.choice(QUERIES)} (attempt {i} of {size})", message_chars, rng)
        session = sessions[-1] if sessions and i % 8 else None
        turn = pipeline.prepare(user, ChatInput(q, session_id=session), f"b{i}")
        if session is None:
            sessions.append(turn.session_id)
        with engine.begin() as conn:  # the turn's messages feed the next turn's confusion window
            conversation.record_turn(conn, turn.session_id, q, turn.query_vector, "(reply)", None)
        for stage, ms in turn.timings.items():
            stages.setdefault(stage, []).append(ms)
    vectors = service.embed([f"{q} variant {i}" for i, q in enumerate(QUERIES * 7)][:100])
    recall = index_recall(engine, vectors, k=10)
    engine.dispose()
    return {
        "nodes": size,
        "queries": n_queries,
        "message_chars": message_chars,
        "load_s": round(load_s, 1),
        "recall@10": round(recall, 4),
        "stages": {
            s: {"p50": round(percentile(v, 50), 2), "p95": round(percentile(v, 95), 2)} for s, v in stages.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="keep a database already filled by a previous run")
    parser.add_argument("--message-chars", type=int, default=0, help="pad every message to about this many chars")
    args = parser.parse_args()
    from shared.logs import configure_logging

    configure_logging("WARNING")
    results = [run(size, args.queries, args.reuse, args.message_chars) for size in args.sizes]
    for r in results:
        length = f", messages of ~{r['message_chars']} chars" if r["message_chars"] else ""
        print(f"\n== {r['nodes']} nodes, {r['queries']} queries{length}, HNSW recall@10 vs exact {r['recall@10']}")
        print(f"{'stage':<16}{'p50 ms':>10}{'p95 ms':>10}")
        for stage, v in r["stages"].items():
            print(f"{stage:<16}{v['p50']:>10.2f}{v['p95']:>10.2f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
