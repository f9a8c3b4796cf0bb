"""Issue 14's lever on the first model pass, measured: a shallower intent classifier.

    .venv-train/bin/python benchmarks/bench_intent_depth.py [--layers 6 4 3 2] [--seeds 42 7 13]

A chat turn reads the message with two MiniLM passes one after the other (the intent,
then the encoder); both are on the turn's critical path (docs/chat.md). The encoder's
vector must stay what the stored chunks were embedded with, so only the intent pass can
get cheaper. An intent head on the frozen encoder loses 8 points on the product's
intents (`bench_intent_shared_encoder.py`); this keeps fine-tuning the whole classifier
but on the first N of MiniLM's six transformer layers (`IntentConfig.layers`).

For every depth and seed it runs the build's own trainer (`train_intent.train`: the
seeded stratified 80/10/10 split of `intent_queries.tsv`, temperature on the val part),
the build's INT8 recipe choice (`quantize.quantize_best`), and reports:

- FP32 and INT8 accuracy on the test part and on the golden set (50 queries, never
  trained on), and the FP32 macro-F1 on the test part;
- the INT8 pass's cost per message, one message at a time as a turn sends it, through
  the serving session options (`shared.models.onnx_model.session_options`), p50 / p95
  ms over the golden and test queries repeated, with 1 and 2 intra-op threads.

CLINC150 at a given depth: `bench_intent_clinc150.py --layers N` (the same routine).
Every model is trained by the build's recipe, which distils it from a six-layer teacher
fitted first on the same split (`IntentConfig.teacher_layers`, `train_intent.fit_taught`);
`--teacher-layers 0` trains on labels alone, as the build did before session 8.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from model_export.intent_data import INTENT_LABELS, load_examples, stratified_split  # noqa: E402
from model_export.quantize import quantize_best  # noqa: E402
from model_export.train_intent import IntentConfig, load_golden, train  # noqa: E402
from model_export.training import load_training_tokenizer, tokenize  # noqa: E402
from shared.models.onnx_model import session_options  # noqa: E402


def onnx_accuracy(session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str], labels: list[str]) -> float:
    """Arg-max accuracy of an ONNX intent graph on labelled texts (batches of 32)."""
    index = {label: i for i, label in enumerate(INTENT_LABELS)}
    hits = 0
    for start in range(0, len(texts), 32):
        feeds = tokenize(tokenizer, texts[start : start + 32])
        logits = session.run(None, feeds)[0]
        truth = np.array([index[lab] for lab in labels[start : start + 32]])
        hits += int((logits.argmax(-1) == truth).sum())
    return hits / len(texts)


def pass_ms(path: Path, tokenizer: Tokenizer, texts: list[str], threads: int, repeats: int) -> tuple[float, float]:
    """p50 / p95 ms of tokenising and scoring one message, as a chat turn does."""
    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    for text in texts[:20]:  # warm-up
        session.run(None, tokenize(tokenizer, [text]))
    times = []
    for _ in range(repeats):
        for text in texts:
            t0 = time.perf_counter()
            session.run(None, tokenize(tokenizer, [text]))
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def run_one(config: IntentConfig, work: Path, repeats: int) -> dict:
    """Train one model by the build's recipe at `config`, quantize it as the build does, score and time it."""
    seed = config.seed
    trained = train(work, seed=seed, config=config)
    int8_path, agreement, _ = quantize_best(trained, work)
    split = stratified_split(load_examples(), seed=seed)
    golden = load_golden()
    tokenizer = load_training_tokenizer()
    int8 = ort.InferenceSession(str(int8_path), session_options(2), providers=["CPUExecutionProvider"])
    texts = [t for t, _ in golden] + [t for t, _ in split.test]
    row = {
        "layers": config.layers,
        "teacher_layers": config.teacher_layers,
        "frozen_layers": config.frozen_layers,
        "extra_layers": config.extra_layers,
        "seed": seed,
        "fp32_test_accuracy": trained.metrics["test"]["accuracy"],
        "fp32_test_macro_f1": trained.metrics["test"]["macro_f1"],
        "fp32_golden_accuracy": trained.metrics["golden"]["accuracy"],
        "int8_test_accuracy": round(onnx_accuracy(int8, tokenizer, *map(list, zip(*split.test, strict=True))), 4),
        "int8_golden_accuracy": round(onnx_accuracy(int8, tokenizer, *map(list, zip(*golden, strict=True))), 4),
        "int8_recipe": agreement.scheme,
        "int8_argmax_agreement": agreement.values.get("argmax_agreement"),
        "int8_mb": round(int8_path.stat().st_size / 1e6, 1),
        "train_seconds": trained.metrics["train_seconds"],
    }
    for threads in (1, 2):
        p50, p95 = pass_ms(int8_path, tokenizer, texts, threads, repeats)
        row[f"int8_ms_{threads}t"] = [round(p50, 3), round(p95, 3)]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 4, 3, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 13])
    parser.add_argument(
        "--teacher-layers",
        type=int,
        default=IntentConfig.teacher_layers,
        help="distil every model from a teacher this deep (`IntentConfig.teacher_layers`; 0: labels only)",
    )
    parser.add_argument("--distill-weight", type=float, default=IntentConfig.distill_weight)
    parser.add_argument(
        "--frozen-layers",
        type=int,
        default=IntentConfig.frozen_layers,
        help="keep the first N layers as pretrained (a trunk shared with the encoder; 0: all fine-tuned)",
    )
    parser.add_argument(
        "--extra-layers",
        type=int,
        default=IntentConfig.extra_layers,
        help="trainable layers appended (copies of the last); with --frozen-layers 6, a classifier over the exact"
        " encoder (the timings are then the whole graph's, not the appended layers')",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timing passes over the golden + test queries")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for layers in args.layers:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                config = IntentConfig(
                    seed=seed,
                    layers=layers,
                    frozen_layers=args.frozen_layers,
                    extra_layers=args.extra_layers,
                    teacher_layers=args.teacher_layers,
                    distill_weight=args.distill_weight if args.teacher_layers else 0.0,
                )
                row = run_one(config, Path(tmp), args.repeats)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nlayers | seeds | FP32 test acc | INT8 test acc | FP32 golden | INT8 golden | INT8 ms 1t p50/p95 | 2t")
    for layers in args.layers:
        mine = [r for r in rows if r["layers"] == layers]

        def mean(key: str, rows: list[dict] = mine) -> float:
            return statistics.mean(r[key] for r in rows)

        def ms(key: str, rows: list[dict] = mine) -> str:
            p50, p95 = (statistics.median(r[key][i] for r in rows) for i in (0, 1))
            return f"{p50:.2f} / {p95:.2f}"

        print(
            f"{layers} | {len(mine)} | {mean('fp32_test_accuracy'):.4f} | {mean('int8_test_accuracy'):.4f} | "
            f"{mean('fp32_golden_accuracy'):.4f} | {mean('int8_golden_accuracy'):.4f} | "
            f"{ms('int8_ms_1t')} | {ms('int8_ms_2t')}"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
