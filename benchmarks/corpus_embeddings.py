"""Embeddings of the documentation corpus, computed once and cached beside it.

    .venv/bin/python benchmarks/corpus_embeddings.py [--corpus .state/corpus]

Embedding 100k chunks with the INT8 encoder takes many minutes of CPU, so it is done
once (run it under `nice`) and reused by every benchmark run: `<corpus>/embeddings.npy`
(float32, one row per node of `nodes.json`, in order, of `node_text(title, content)`, as
migrate_vectors embeds them) and `<corpus>/embeddings.json` (the encoder's model name,
the row count and a digest of the texts, so a rebuilt corpus or another encoder is never
paired with stale vectors). Progress is checkpointed every `--checkpoint` rows
(`embeddings.partial.npy`): an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

import numpy as np  # noqa: E402

from shared.curriculum import node_text  # noqa: E402


def corpus_texts(nodes: Sequence[dict]) -> list[str]:
    return [node_text(n["title"], n["content"]) for n in nodes]


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cached_embeddings(
    corpus: Path,
    texts: Sequence[str],
    embed: Callable[[Sequence[str]], np.ndarray],
    model_name: str,
    *,
    batch: int = 256,
    checkpoint: int = 4096,
    log: Callable[[str], None] = lambda _m: None,
) -> np.ndarray:
    """The cached matrix when it matches (model, texts); otherwise computed and cached."""
    meta_path, final, partial = corpus / "embeddings.json", corpus / "embeddings.npy", corpus / "embeddings.partial.npy"
    meta = {"model": model_name, "rows": len(texts), "texts": texts_digest(texts)}
    if meta_path.is_file() and final.is_file() and json.loads(meta_path.read_text()) == meta:
        return np.load(final)
    part_meta = corpus / "embeddings.partial.json"
    done = np.zeros((0, 0), dtype=np.float32)
    if partial.is_file() and part_meta.is_file() and json.loads(part_meta.read_text()) == meta:
        done = np.load(partial)
    parts = [done] if len(done) else []
    start, t0, since = len(done), time.perf_counter(), 0
    for i in range(start, len(texts), batch):
        parts.append(np.asarray(embed(list(texts[i : i + batch])), dtype=np.float32))
        since += len(parts[-1])
        if since >= checkpoint or i + batch >= len(texts):
            stacked = np.concatenate(parts)
            parts = [stacked]
            np.save(partial, stacked)
            part_meta.write_text(json.dumps(meta))
            rate = (len(stacked) - start) / (time.perf_counter() - t0)
            log(f"embedded {len(stacked)}/{len(texts)} ({rate:.0f} chunks/s)")
            since = 0
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    np.save(final, vectors)
    meta_path.write_text(json.dumps(meta))
    partial.unlink(missing_ok=True)
    part_meta.unlink(missing_ok=True)
    return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "corpus")
    args = parser.parse_args()
    from shared.embeddings.service import get_embedding_service

    nodes = json.loads((args.corpus / "nodes.json").read_text())["nodes"]
    service = get_embedding_service()
    t0 = time.perf_counter()
    vectors = cached_embeddings(
        args.corpus, corpus_texts(nodes), service.embed, service.model_name, log=lambda m: print(m, file=sys.stderr)
    )
    seconds = time.perf_counter() - t0
    print(json.dumps({"rows": len(vectors), "model": service.model_name, "seconds": round(seconds, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
