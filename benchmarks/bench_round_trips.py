"""A chat turn's database work with pg8000's three round trips per statement and with
the pipelined one (`shared.db.engine.pipeline_unnamed_statements`), at several network
round-trip times.

    .venv/bin/python benchmarks/bench_round_trips.py [--size 100000] [--turns 300] [--rtt-ms 0 0.5 1]

A "turn" is what a chat turn sends after the models have read the message, in one
transaction: the caller's row, the full-text side, the vector side fused with it, and
the student's mastery (`ensure_user`, `full_text_ranks`, `fused_search`,
`student_on_topic`), then the commit. Queries are the documentation corpus' held-out
sentences against `bench_chat_pipeline.py`'s database of `--size` chunks when it is
filled (else four fixed questions against whatever it holds), each with a seeded random
unit vector, so the statements are the same work on both sides.

`--rtt-ms` > 0 puts a loopback TCP relay between the driver and the embedded server's
Unix socket that holds every chunk for half the round-trip time in each direction: the
shape of a connection to Cloud SQL from a function in the same region (its RTT is not
measured here; the relay's own cost, ~0.1 ms a hop, is in every figure, so compare the
two sides of one RTT). Printed per RTT and side: p50 / p95 ms per turn and the driver's
socket flushes per turn (one per round trip it waits for).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

QUESTIONS = [
    "how does a for loop know when to stop",
    "what is the difference between a list and a tuple",
    "why does my recursion never end",
    "explain variable scope in functions",
]


class DelayRelay:
    """A loopback TCP relay to a Unix socket that delays each chunk by `one_way_s`."""

    def __init__(self, unix_path: str, one_way_s: float) -> None:
        self.unix_path, self.one_way_s = unix_path, one_way_s
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.unix_path)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(1 << 16):
                if self.one_way_s:
                    time.sleep(self.one_way_s)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopped.set()
        self.server.close()


@contextmanager
def execute_unnamed(pipelined: bool) -> Iterator[None]:
    from pg8000 import core

    from shared.db.engine import pipeline_unnamed_statements

    assert pipeline_unnamed_statements(), "this pg8000 release is not pipelined"
    ours = core.CoreConnection.execute_unnamed
    core.CoreConnection.execute_unnamed = ours if pipelined else ours.driver_version  # type: ignore[attr-defined]
    try:
        yield
    finally:
        core.CoreConnection.execute_unnamed = ours


def turn_runner(engine: sa.Engine, texts: list[str], vectors: np.ndarray) -> Callable[[int], None]:
    from shared.identity import Principal
    from shared.mastery.store import student_on_topic
    from shared.rag.retrieval import RetrievalParams, full_text_ranks, fused_search
    from shared.users import ensure_user

    user, params = Principal("bench-round-trips"), RetrievalParams(k=8)

    def turn(i: int) -> None:
        with engine.begin() as conn:
            ensure_user(conn, user)
            ids = full_text_ranks(conn, texts[i % len(texts)], params)
            hits = fused_search(conn, ids, vectors[i % len(vectors)], params)
            student_on_topic(conn, user.uid, hits[0].topic_id if hits and hits[0].topic_id else None)

    return turn


def measure(run: Callable[[int], None], turns: int) -> dict:
    from shared.db.engine import counted_flushes

    for i in range(10):  # warm-up: connection, plans, pages
        run(i)
    times, flushes = [], []
    for i in range(turns):
        with counted_flushes() as count:
            started = time.perf_counter()
            run(i)
            times.append((time.perf_counter() - started) * 1000)
        flushes.append(count[0])
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "flushes_per_turn": round(float(np.mean(flushes)), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "corpus")
    parser.add_argument("--size", type=int, default=100_000, help="bench_chat_pipeline's database of this size")
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("STATE_DIR", str(REPO / ".state" / "bench"))
    os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

    from bench_chat_pipeline import open_database

    from shared.db.engine import create_engine

    engine, _ = open_database(args.size, reuse=True)  # filled by bench_chat_pipeline, or empty
    with engine.connect() as conn:
        nodes = conn.execute(sa.text("SELECT count(*) FROM knowledge_nodes")).scalar() or 0
    filled = nodes >= 0.99 * args.size  # twins of the corpus share an id: a few fewer rows
    queries = args.corpus / "queries.json"
    texts = [q["query"] for q in json.loads(queries.read_text())] if filled and queries.is_file() else QUESTIONS
    vectors = np.random.default_rng(7).normal(size=(512, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    unix_path = engine.url.query.get("unix_sock")
    results: dict = {"database": engine.url.database, "filled": filled, "turns": args.turns, "rtt": {}}
    asked = "corpus queries" if filled else "four questions"
    print(f"database {engine.url.database}: {nodes} chunks, {asked}; {args.turns} turns")
    for rtt in args.rtt_ms:
        relay = None
        target = engine
        if rtt > 0:
            assert isinstance(unix_path, str), "the relay needs the embedded server's Unix socket"
            relay = DelayRelay(unix_path, rtt / 2000)
            url = engine.url.set(host="127.0.0.1", port=relay.port, query={})
            target = create_engine_for(url, create_engine)
        try:
            row = {}
            for side, pipelined in (("driver, three round trips", False), ("pipelined, one", True)):
                with execute_unnamed(pipelined):
                    row[side] = measure(turn_runner(target, texts, vectors), args.turns)
                print(f"rtt {rtt:4.1f} ms  {side:26s} {row[side]}")
            results["rtt"][str(rtt)] = row
        finally:
            if target is not engine:
                target.dispose()
            if relay is not None:
                relay.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def create_engine_for(url: sa.URL, create_engine: Callable[..., sa.Engine]) -> sa.Engine:
    """The product's engine (pool, pgvector adapters, retrieval settings) on another URL."""
    from shared.config import get_settings

    settings = get_settings().model_copy(
        update={"database_url": url.render_as_string(hide_password=False), "db_vector_selftest": False}
    )
    return create_engine(settings)


if __name__ == "__main__":
    sys.exit(main())
