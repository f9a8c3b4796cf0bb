"""Embedding cache benchmark: hit rates per layer (in-process LRU, shared Redis) under a
replayed stream of student questions spread over several function instances.

    .venv/bin/python benchmarks/bench_embedding_cache.py [--requests 3000] [--instances 4]

The stream: CLINC150's validation utterances (real user phrasings; `../shared/data`),
else the golden intent queries, drawn with a Zipf(1.1) popularity so a few questions
recur often and most are rare, with a third of the repeats re-spelled (case and
whitespace) the way students retype. Each request goes to a random instance, as a load
balancer would. Three set-ups replay the same stream:
  1. LRU only (what each instance has without REDIS_URL);
  2. LRU + a shared Redis (a `redis-server` this script starts on loopback and stops);
  3. the same with Redis stopped halfway (the degradation path).
Printed per set-up: LRU hit rate, Redis hit rate (of LRU misses), model calls, and the
wall-clock p50/p95 of one `embed_one` for a model call vs a Redis hit. The encoder is the
published INT8 MiniLM (`make models`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from local.loopback import LoopbackServerError, start_redis  # noqa: E402
from shared.embeddings.backends import RegistryEncoderBackend  # noqa: E402
from shared.embeddings.service import EmbeddingService  # noqa: E402
from shared.embeddings.shared_cache import RedisEmbeddingCache  # noqa: E402


def questions() -> tuple[list[str], str]:
    data = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data")) / "clinc150" / "val.json"
    if data.is_file():
        val = json.loads(data.read_text())
        return [t for t, _ in val["val"]], "CLINC150 val"
    golden = json.loads((REPO / "tests" / "golden_queries.json").read_text())
    return [q["query"] for q in golden["queries"]], "golden intent queries"


def stream(texts: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ranks = np.arange(1, len(texts) + 1, dtype=float)
    weights = 1.0 / ranks**1.1
    order = texts[:]
    rng.shuffle(order)
    picked = rng.choices(order, weights=weights, k=n)
    out = []
    for text in picked:
        if rng.random() < 1 / 3:
            text = "  " + text.upper() if rng.random() < 0.5 else text.replace(" ", "   ")
        out.append(text)
    return out


def replay(requests: list[str], instances: int, url: str | None, lru: int, seed: int, at_half=None) -> dict:
    """Replay the stream; `at_half()` is called once, halfway (the outage drill stops Redis there)."""
    backend = RegistryEncoderBackend()
    services = [
        EmbeddingService(
            backend, cache_size=lru, shared_cache=RedisEmbeddingCache.from_url(url, cooldown_s=5) if url else None
        )
        for _ in range(instances)
    ]
    rng = random.Random(seed)
    model_ms, shared_ms = [], []
    for i, text in enumerate(requests):
        if at_half is not None and i == len(requests) // 2:
            at_half()
        service = services[rng.randrange(instances)]
        calls_before = service.backend_calls
        shared_hits = service.shared_cache.hits if service.shared_cache else 0
        lru_hits = service.cache.hits
        t0 = time.perf_counter()
        service.embed_one(text)
        ms = (time.perf_counter() - t0) * 1000
        if service.backend_calls > calls_before:
            model_ms.append(ms)
        elif service.shared_cache and service.shared_cache.hits > shared_hits and service.cache.hits == lru_hits:
            shared_ms.append(ms)
    lru_hits = sum(s.cache.hits for s in services)
    lru_misses = sum(s.cache.misses for s in services)
    sh = [s.shared_cache.stats() for s in services if s.shared_cache]
    return {
        "requests": len(requests),
        "lru_hit_rate": lru_hits / max(1, lru_hits + lru_misses),
        "redis_hit_rate": (sum(x["hits"] for x in sh) / max(1, sum(x["hits"] + x["misses"] for x in sh)))
        if sh
        else None,
        "redis_errors": sum(x["errors"] for x in sh) if sh else None,
        "model_calls": sum(s.backend_calls for s in services),
        "model_ms": model_ms,
        "redis_ms": shared_ms,
    }


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--lru", type=int, default=512, help="LRU size per instance")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    texts, source = questions()
    requests = stream(texts, args.requests, args.seed)
    print(
        f"{args.requests} requests over {args.instances} instances, LRU {args.lru} each; "
        f"questions: {source} ({len(texts)} distinct, Zipf 1.1)"
    )
    workdir = tempfile.mkdtemp(prefix="cc-bench-redis-")
    try:
        proc, port = start_redis(workdir)
    except LoopbackServerError as exc:
        raise SystemExit(str(exc)) from None
    url = f"redis://127.0.0.1:{port}/0"
    rows = []
    try:
        rows.append(("LRU only", replay(requests, args.instances, None, args.lru, args.seed)))
        rows.append(("LRU + Redis", replay(requests, args.instances, url, args.lru, args.seed)))
        subprocess.run(["redis-cli", "-p", str(port), "flushall"], check=False, capture_output=True)

        def outage() -> None:
            proc.kill()
            proc.wait(10)

        rows.append(("LRU + Redis, down at half", replay(requests, args.instances, url, args.lru, args.seed, outage)))
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"{'set-up':28} {'LRU hit':>8} {'Redis hit':>9} {'errors':>6} {'model calls':>11} "
        f"{'model p50/p95 ms':>17} {'Redis-hit p50/p95 ms':>21}"
    )
    for name, r in rows:
        redis_rate = "-" if r["redis_hit_rate"] is None else f"{r['redis_hit_rate']:.1%}"
        errors = "-" if r["redis_errors"] is None else str(r["redis_errors"])
        print(
            f"{name:28} {r['lru_hit_rate']:>8.1%} {redis_rate:>9} {errors:>6} {r['model_calls']:>11} "
            f"{pct(r['model_ms'], 50) + '/' + pct(r['model_ms'], 95):>17} "
            f"{pct(r['redis_ms'], 50) + '/' + pct(r['redis_ms'], 95):>21}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
