"""Embeddings of the documentation corpus, computed once and cached beside it.

    .venv/bin/python benchmarks/corpus_embeddings.py [--corpus .state/corpus]
        [--reuse-from OTHER_CORPUS ...] [--checkpoint 2048]

Embedding 100k chunks with the INT8 encoder takes many minutes of CPU, so it is done
once (run it under `nice`) and reused by every benchmark run: `<corpus>/embeddings.npy`
(float32 vectors of `node_text(title, content)`, as migrate_vectors embeds them) and
`<corpus>/embeddings.json` (the encoder's model name, the row count and a digest of the
texts, so a rebuilt corpus or another encoder is never paired with stale vectors).

Nodes are embedded in a seeded random order (`embedding_order`), and progress is
checkpointed every `--checkpoint` rows (`embeddings.partial.npy`): an interrupted run
resumes, and whatever prefix is done is already a uniform sample of the corpus, which
the benchmark can use for any size up to it (`load_embeddings`).

`--reuse-from` takes the vectors of identical texts from another corpus' cache (same
encoder) instead of embedding them again: a 300k corpus starts with the 100k one's
records, so only ~190k of its 300k chunks need the encoder (~18 ms each on one thread,
~1 h; a text repeated in the corpus, e.g. a page footer, is encoded once). Rows are
still produced in the same order, so checkpoints, resuming and the meta check behave as
without it. The 300k corpus, on one core at the lowest priority (see `doc_corpus.py`):

    ONNX_THREADS=1 nice -n 19 .venv/bin/python benchmarks/corpus_embeddings.py \
        --corpus .state/corpus300k --reuse-from .state/corpus --checkpoint 8192

Rerunning the same command resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

import numpy as np  # noqa: E402

from shared.knowledge_text import node_text  # noqa: E402


def corpus_texts(nodes: Sequence[dict]) -> list[str]:
    return [node_text(n["title"], n["content"]) for n in nodes]


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def embedding_order(n: int, seed: int = 0) -> np.ndarray:
    """The order nodes are embedded in: a seeded permutation, so every prefix is a sample."""
    return np.random.default_rng(seed).permutation(n)


def _meta(model_name: str, texts: Sequence[str]) -> dict:
    return {"model": model_name, "rows": len(texts), "texts": texts_digest(texts), "order_seed": 0}


def load_embeddings(corpus: Path, texts: Sequence[str], model_name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(node indices, their vectors) embedded so far, finished or partial; ([], []) if none
    match these texts (and `model_name`, when given)."""
    for stem in ("embeddings", "embeddings.partial"):
        meta_path, data = corpus / f"{stem}.json", corpus / f"{stem}.npy"
        if not (meta_path.is_file() and data.is_file()):
            continue
        meta = json.loads(meta_path.read_text())
        expected = _meta(meta["model"] if model_name is None else model_name, texts)
        if meta == expected:
            vectors = np.load(data)
            return embedding_order(len(texts))[: len(vectors)], vectors
    return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)


def reusable_vectors(other: Path, texts: Sequence[str], model_name: str) -> dict[str, np.ndarray]:
    """text -> vector for those of `texts` that another corpus has already embedded with
    the same encoder (its finished or partial cache).

    A bigger corpus built by `doc_corpus.py` starts with the records of a smaller one
    (same packages, same order), so most of its texts are already embedded there: only the
    chunks that lost or kept a held-out query sentence differ. Matching on the exact text
    (not on ids or positions) keeps this safe whatever the two corpora are."""
    nodes = json.loads((other / "nodes.json").read_text())["nodes"]
    other_texts = corpus_texts(nodes)
    indices, vectors = load_embeddings(other, other_texts, model_name)
    wanted = set(texts)
    return {other_texts[i]: vectors[k] for k, i in enumerate(indices) if other_texts[i] in wanted}


def _embed_batch(
    texts: Sequence[str], embed: Callable[[Sequence[str]], np.ndarray], known: dict[str, np.ndarray]
) -> tuple[np.ndarray, int]:
    """(vectors of `texts`, how many were computed): known vectors where there are, the
    encoder once for each other distinct text, which becomes known (documentation repeats
    itself: page footers, aggregate pages; a few percent of chunks are duplicates)."""
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        known.update(zip(missing, np.asarray(embed(missing), dtype=np.float32), strict=True))
    return np.stack([known[t] for t in texts]).astype(np.float32), len(missing)


def cached_embeddings(
    corpus: Path,
    texts: Sequence[str],
    embed: Callable[[Sequence[str]], np.ndarray],
    model_name: str,
    *,
    batch: int = 256,
    checkpoint: int = 2048,
    reuse: Mapping[str, np.ndarray] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> np.ndarray:
    """Vectors of every text, rows in `embedding_order`: the cache when complete, else the
    rest computed (resuming a partial run) and cached.

    `reuse` (text -> vector, see `reusable_vectors`) fills the rows whose text it knows
    instead of the encoder, as do rows already done with the same text; rows are still
    produced in `embedding_order`, so a partial cache stays a prefix (a uniform sample)
    and resumes exactly as without it."""
    meta = _meta(model_name, texts)
    order = embedding_order(len(texts))
    indices, done = load_embeddings(corpus, texts, model_name)
    if len(done) == len(texts):
        return done
    known = dict(reuse or {})
    known.update((texts[i], done[k]) for k, i in enumerate(indices))
    parts = [done] if len(done) else []
    start, t0, since, computed = len(done), time.perf_counter(), 0, 0
    for i in range(start, len(texts), batch):
        vectors, fresh = _embed_batch([texts[j] for j in order[i : i + batch]], embed, known)
        parts.append(vectors)
        since += len(vectors)
        computed += fresh
        if since >= checkpoint or i + batch >= len(texts):
            stacked = np.concatenate(parts)
            parts = [stacked]
            np.save(corpus / "embeddings.partial.npy.tmp.npy", stacked)
            (corpus / "embeddings.partial.npy.tmp.npy").replace(corpus / "embeddings.partial.npy")
            (corpus / "embeddings.partial.json").write_text(json.dumps(meta))
            seconds = time.perf_counter() - t0
            log(
                f"embedded {len(stacked)}/{len(texts)} ({computed} computed, {len(stacked) - start - computed} reused"
                f" this run; {computed / seconds:.1f} computed/s)"
            )
            since = 0
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    np.save(corpus / "embeddings.npy", vectors)
    (corpus / "embeddings.json").write_text(json.dumps(meta))
    (corpus / "embeddings.partial.npy").unlink(missing_ok=True)
    (corpus / "embeddings.partial.json").unlink(missing_ok=True)
    return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "corpus")
    parser.add_argument(
        "--reuse-from",
        type=Path,
        action="append",
        default=[],
        help="another corpus folder whose cached vectors are reused for identical texts (repeatable)",
    )
    parser.add_argument("--checkpoint", type=int, default=2048, help="rows between partial saves")
    args = parser.parse_args()
    from shared.embeddings.service import get_embedding_service

    nodes = json.loads((args.corpus / "nodes.json").read_text())["nodes"]
    texts = corpus_texts(nodes)
    service = get_embedding_service()
    reuse: dict[str, np.ndarray] = {}
    for other in args.reuse_from:
        reuse.update(reusable_vectors(other, texts, service.model_name))
    if args.reuse_from:
        rows = sum(t in reuse for t in texts)
        sources = ", ".join(str(o) for o in args.reuse_from)
        print(f"{rows} of {len(texts)} rows ({len(reuse)} distinct texts) reused from {sources}", file=sys.stderr)
    t0 = time.perf_counter()
    vectors = cached_embeddings(
        args.corpus,
        texts,
        service.embed,
        service.model_name,
        checkpoint=args.checkpoint,
        reuse=reuse,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    seconds = time.perf_counter() - t0
    print(json.dumps({"rows": len(vectors), "model": service.model_name, "seconds": round(seconds, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
