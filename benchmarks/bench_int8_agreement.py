"""INT8 vs FP32 agreement of every published model, on held-out and on real data.

    .venv-train/bin/python benchmarks/bench_int8_agreement.py [--store URI] [--limit 1000]

For the version in service it takes each model's INT8 graph from the store and its FP32
graph and held-out check feeds from the build folder the pipeline keeps
(`<state_dir>/build/<fingerprint[:16]>/<model>/`), and prints:
- the agreement on the check feeds (what the publish gate measured, recomputed here);
- for the encoder and the intent model, the agreement on real user utterances
  (CLINC150 val, when ../shared/data is present), which no build step has seen; for the
  intent model these are out of domain, so the rows it is confident about (FP32 max
  probability >= 0.60, the product's action threshold) are reported apart;
- for the encoder, INT8 ONNX against the original PyTorch FP32 model
  (sentence-transformers) on the same utterances: the end-to-end error of the export.
Metrics: embedding = cosine (mean, p05, min); logits = argmax agreement and max/mean
|prob diff|; logit = decision agreement (p >= 0.5) and max/mean |prob diff|.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from model_export.agreement import THRESHOLDS, gate, measure  # noqa: E402
from model_export.build import load_feeds  # noqa: E402
from shared.artifacts import fetch_version, open_store, read_current  # noqa: E402
from shared.models.onnx_model import OnnxModel, load_tokenizer, tokenize  # noqa: E402

#: the product's human-review threshold: predictions at or above it are acted on
CONFIDENT = 0.60


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def real_texts(limit: int) -> list[str]:
    data = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
    path = data / "clinc150" / "val.json"
    if not path.is_file():
        return []
    texts = [t for t, _ in json.loads(path.read_text())["val"]]
    step = max(1, len(texts) // limit)  # spread over all intents, not the first few
    return texts[::step][:limit]


def run_all(model: OnnxModel, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([model.run(f)[0] for f in feeds], axis=0)


def text_feeds(tokenizer, texts: list[str], batch: int = 64) -> list[dict[str, np.ndarray]]:
    return [tokenize(tokenizer, texts[i : i + batch]) for i in range(0, len(texts), batch)]


def fmt(kind: str, values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in values.items())


def cosine_extra(ref: np.ndarray, cand: np.ndarray) -> dict[str, float]:
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cand = cand / np.linalg.norm(cand, axis=1, keepdims=True)
    cos = np.sum(ref * cand, axis=1)
    return {
        "mean_cosine": float(cos.mean()),
        "p05_cosine": float(np.percentile(cos, 5)),
        "min_cosine": float(cos.min()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="model store (default: settings)")
    parser.add_argument("--build-root", default=None, help="default: <state_dir>/build")
    parser.add_argument("--limit", type=int, default=1000, help="real utterances to use")
    args = parser.parse_args()

    from shared.config import get_settings

    settings = get_settings()
    store = open_store(args.store)
    pointer = read_current(store)
    if pointer is None:
        sys.exit(f"nothing published in {store.uri}: run `python -m model_export build` first")
    version_dir, manifest = fetch_version(
        store,
        pointer.version,
        settings.state_dir / "model-cache",
        expected_manifest_sha256=pointer.manifest_sha256,
    )
    fingerprint = manifest.get("build", {}).get("fingerprint", "")
    build_dir = Path(args.build_root or settings.state_dir / "build") / fingerprint[:16]
    print(f"version {pointer.version} from {store.uri}; FP32 sources from {build_dir}")
    if not build_dir.is_dir():
        sys.exit(f"no build folder {build_dir}: rebuild with `python -m model_export build --force`")
    texts = real_texts(args.limit)
    tokenizer = load_tokenizer(version_dir / "tokenizer.json")
    rows: list[tuple[str, str, int, str, str]] = []
    for name, entry in manifest["models"].items():
        kind = entry.get("output_kind") or entry.get("int8_check", {}).get("kind")
        fp32_files = sorted((build_dir / name).glob("*.onnx"))
        if not fp32_files or kind not in THRESHOLDS:
            rows.append((name, "-", 0, "no FP32 source or unknown output kind", "skipped"))
            continue
        fp32 = OnnxModel(fp32_files[0])
        int8 = OnnxModel(version_dir / entry["file"])
        feeds = load_feeds(build_dir / name / "check_feeds.npz")
        ref, cand = run_all(fp32, feeds), run_all(int8, feeds)
        values = measure(ref, cand, kind)
        if kind == "embedding":
            values = cosine_extra(ref, cand)
        failures = gate(kind, values)
        recipe = entry.get("int8_check", {}).get("scheme") or "?"
        rows.append(
            (
                name,
                f"check feeds ({recipe})",
                len(ref),
                fmt(kind, values),
                "pass" if not failures else "FAIL " + "; ".join(failures),
            )
        )
        if texts and name in ("encoder", "intent"):
            real = text_feeds(tokenizer, texts)
            ref, cand = run_all(fp32, real), run_all(int8, real)
            values = cosine_extra(ref, cand) if kind == "embedding" else measure(ref, cand, kind)
            failures = gate(kind, values)
            # For the intent model CLINC150 is out of domain (banking, travel, ...): most
            # rows are low-confidence, where a small logit shift may flip the argmax. The
            # product only acts on confident predictions, so report those apart.
            label = "CLINC150 val (out of domain)" if name == "intent" else "CLINC150 val utterances"
            verdict = "pass" if not failures else "outside gate: " + "; ".join(failures)
            rows.append((name, label, len(ref), fmt(kind, values), verdict))
            if kind == "logits":
                confident = softmax(ref).max(axis=1) >= CONFIDENT
                if confident.any():
                    values = measure(ref[confident], cand[confident], kind)
                    failures = gate(kind, values)
                    rows.append(
                        (
                            name,
                            f"  of which FP32 conf >= {CONFIDENT:.2f}",
                            int(confident.sum()),
                            fmt(kind, values),
                            "pass" if not failures else "FAIL " + "; ".join(failures),
                        )
                    )
        if texts and name == "encoder":
            from sentence_transformers import SentenceTransformer

            from model_export.base_model import minilm_dir

            torch_model = SentenceTransformer(str(minilm_dir()), device="cpu")
            ref = torch_model.encode(texts, batch_size=64, normalize_embeddings=True)
            values = cosine_extra(ref, cand)
            rows.append(
                (
                    name,
                    "CLINC150 vs PyTorch FP32",
                    len(ref),
                    fmt(kind, values),
                    "pass" if not gate(kind, values) else "FAIL",
                )
            )
    print(f"{'model':10s} {'inputs':32s} {'rows':>5s}  {'agreement':62s} gate")
    for name, inputs, n, values, verdict in rows:
        print(f"{name:10s} {inputs:32s} {n:>5d}  {values:62s} {verdict}")


if __name__ == "__main__":
    main()
