"""Issue 14's largest CPU lever, measured: an intent head on the shared encoder's output.

    .venv-train/bin/python benchmarks/bench_intent_shared_encoder.py   # the current version of MODEL_STORE_URI

A chat turn runs two MiniLM passes: the encoder (the retrieval embedding) and the
fine-tuned intent classifier. A head on the encoder's sentence embedding would make it
one pass. This script measures what such a head can reach, with the encoder as served
(the published INT8 ONNX, through the registry) frozen, and a multinomial logistic
regression as the head (scikit-learn; its C chosen on a seeded tenth of the training
part, never on the reported part):

- CLINC150: trained on `train.json` (150 intents + its 100 out-of-scope queries as the
  class "oos"), reported on `val.json` (the test split is kept apart): in-scope accuracy
  and OOS recall at the arg-max, and the in-scope accuracy at the lowest threshold on
  the top probability that reaches 70 % OOS recall on val (tuned on what it reports: an
  optimistic figure, labelled so). Compare with the fine-tuned MiniLM of
  `bench_intent_clinc150.py` (docs/intent_confusion.md).
- The product's intents: the trainer's own stratified split of
  `model_export/data/intent_queries.tsv` (seed 42) — head on train, accuracy on the test
  part — and the golden set (`tests/golden_queries.json`), next to the served intent
  model (the version's `intent`) on the same queries.
- Cost: ms per query of the head against the intent model's pass (one thread, p50).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))
# the two served passes this compares against (a version with the encoder's intent head
# would otherwise not load the intent model: SUPERSEDED_BY, shared/models/registry.py)
os.environ.setdefault("SERVED_MODELS", "encoder,intent")

from bench_intent_clinc150 import OOS, data_dir, load_clinc  # noqa: E402

from model_export.intent_data import load_examples, stratified_split  # noqa: E402

TARGET_OOS_RECALL = 0.70


def fit_head(x: np.ndarray, y: list[str], seed: int = 42):
    """Logistic regression with C chosen on a seeded tenth of (x, y)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cut = len(y) // 10
    held, rest = order[:cut], order[cut:]
    labels = np.asarray(y)
    best_c, best_acc = 1.0, -1.0
    for c in (1.0, 10.0, 100.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(x[rest], labels[rest])
        acc = float((model.predict(x[held]) == labels[held]).mean())
        if acc > best_acc:
            best_c, best_acc = c, acc
    return LogisticRegression(C=best_c, max_iter=2000).fit(x, labels), best_c


def clinc(encoder) -> dict:
    train, val = load_clinc(data_dir())
    t0 = time.perf_counter()
    x_train = encoder.embed([t for t, _ in train])
    x_val = encoder.embed([t for t, _ in val])
    embed_s = time.perf_counter() - t0
    head, c = fit_head(x_train, [label for _, label in train])
    probs = head.predict_proba(x_val)
    classes = list(head.classes_)
    truth = np.asarray([label for _, label in val])
    is_oos = truth == OOS
    top = probs.max(-1)
    pred = np.asarray(classes)[probs.argmax(-1)]

    def rates(tau: float) -> tuple[float, float]:
        decided = np.where(top < tau, OOS, pred)
        return float((decided[~is_oos] == truth[~is_oos]).mean()), float((decided[is_oos] == OOS).mean())

    in_scope, oos_recall = rates(0.0)
    tuned = next(
        ((tau, *rates(tau)) for tau in np.linspace(0, 1, 201) if rates(tau)[1] >= TARGET_OOS_RECALL), (None, None, None)
    )
    return {
        "train": len(train),
        "val": len(val),
        "C": c,
        "embed_seconds": round(embed_s, 1),
        "argmax": {"in_scope_accuracy": round(100 * in_scope, 2), "oos_recall": round(100 * oos_recall, 1)},
        "tau_for_70_oos_on_val_optimistic": None
        if tuned[0] is None
        else {
            "tau": round(tuned[0], 3),
            "in_scope_accuracy": round(100 * tuned[1], 2),
            "oos_recall": round(100 * tuned[2], 1),
        },
    }


def product(encoder, intent_model) -> dict:
    split = stratified_split(load_examples(), seed=42)
    head, c = fit_head(encoder.embed([t for t, _ in split.train]), [label for _, label in split.train])
    golden = json.loads((REPO / "tests" / "golden_queries.json").read_text())["queries"]
    out: dict = {"train": len(split.train), "C": c}
    for name, rows in (("test_split", split.test), ("golden", [(q["query"], q["intent"]) for q in golden])):
        texts, truth = [t for t, _ in rows], np.asarray([label for _, label in rows])
        head_pred = head.predict(encoder.embed(texts))
        model_pred = np.asarray([p.label for p in intent_model.predict(texts)])
        out[name] = {
            "n": len(rows),
            "head_accuracy": round(float((head_pred == truth).mean()), 4),
            "intent_model_accuracy": round(float((model_pred == truth).mean()), 4),
        }
    return out


def p50_ms(fn, texts: list[str]) -> float:
    """Median milliseconds of fn(text), one text at a time."""
    times = []
    for t in texts:
        start = time.perf_counter()
        fn(t)
        times.append((time.perf_counter() - start) * 1000)
    return round(float(np.percentile(times, 50)), 3)


def costs(encoder, intent_model, texts: list[str]) -> dict:
    from sklearn.linear_model import LogisticRegression

    vectors = encoder.embed(texts[:50])
    head = LogisticRegression(max_iter=200).fit(vectors, [i % 20 for i in range(len(vectors))])
    weights, bias = head.coef_.astype(np.float32), head.intercept_.astype(np.float32)

    vec = vectors[0]
    return {
        "intent_model_ms_p50": p50_ms(lambda t: intent_model.predict([t]), texts),
        "encoder_ms_p50": p50_ms(lambda t: encoder.embed([t]), texts),
        "head_ms_p50": p50_ms(lambda t: weights @ vec + bias, texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("ONNX_THREADS", "1")
    from shared.models.registry import get_registry

    registry = get_registry()
    encoder, intent_model = registry.get("encoder"), registry.get("intent")
    result = {"models": registry.version, "clinc150": clinc(encoder), "product": product(encoder, intent_model)}
    queries = [q["query"] for q in json.loads((REPO / "tests" / "golden_queries.json").read_text())["queries"]]
    result["cost_one_thread"] = costs(encoder, intent_model, queries)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
