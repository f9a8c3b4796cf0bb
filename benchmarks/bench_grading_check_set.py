"""The offline grading chain on the demo course's grading check set.

    .venv/bin/python benchmarks/bench_grading_check_set.py [--store DIR] [--out FILE]
    .venv/bin/python benchmarks/bench_grading_check_set.py --fit     # refit score_mapping.MAPPINGS

The check set (local/demo/grading_check_set.json) holds hand-written answers to every
short-answer question of the demo course: correct (paraphrased), partially correct,
wrong, off-topic, nonsense and non-answers, split by question into `fit` (the score
mapping is fitted there) and `held_out`. For each way the offline chain can answer -
grader model present; model missing (embedding similarity answers); encoder missing
too (lexical overlap answers) - and for the fit, held-out and all questions, this
prints per class mean / median / min / max score, the AUC of correct vs wrong (and
correct vs partial, partial vs wrong), the confusion table of class x verdict, and
every threshold of shared/grading/check_set.py the scores miss.

`--fit` refits the three mappings: logistic regression on soft targets (correct 1,
partial 0.4, wrong / off-topic / nonsense 0; non-answers never reach a grader) over
the fit questions, features standardised, L2 penalty chosen from a grid by
leave-one-question-out log loss; it prints the constants to paste into
score_mapping.MAPPINGS, then reports with them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.grading import score_mapping  # noqa: E402
from shared.grading.check_set import (  # noqa: E402
    CLASSES,
    FIT_CLASSES,
    PARTS,
    CheckItem,
    grade_all,
    load_check_set,
    summarize,
)
from shared.grading.offline import LexicalGrader, ModelGrader, OfflineGrader, SimilarityGrader  # noqa: E402
from shared.grading.text import is_non_answer  # noqa: E402

#: soft targets: the credit a teacher gives. A partial answer in the check set is a
#: minimal one (the result without the reason, the reason without the fix): it is aimed
#: at the floor of the partially_correct band, PARTIAL_AT / 10 = 0.4.
TARGET = {
    "correct": 1.0,
    "partial": score_mapping.PARTIAL_AT / 10,
    "wrong": 0.0,
    "off_topic": 0.0,
    "nonsense": 0.0,
}
PENALTIES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
VERDICTS = ("correct", "partially_correct", "incorrect", "contradictory")


def chains(store: str | None) -> dict[str, OfflineGrader | str]:
    """The offline chain as it answers with every model, without the grader model, and
    with neither model (a reason string when a chain cannot be built here)."""
    from shared.embeddings.backends import RegistryEncoderBackend
    from shared.embeddings.service import EmbeddingService
    from shared.models.registry import ModelRegistry, ModelUnavailableError

    registry = ModelRegistry(store) if store else ModelRegistry()
    out: dict[str, OfflineGrader | str] = {}
    embeddings = EmbeddingService(RegistryEncoderBackend(registry))
    try:
        registry.get("encoder")
        has_encoder = True
    except ModelUnavailableError as exc:
        has_encoder = False
        reason = f"no encoder in {registry.store.uri}: {exc}"
    try:
        registry.get("grader")
        out["model"] = (
            OfflineGrader([ModelGrader(registry, embeddings), SimilarityGrader(embeddings), LexicalGrader()])
            if has_encoder
            else reason
        )
    except ModelUnavailableError as exc:
        out["model"] = f"no grader model in {registry.store.uri}: {exc}"
    out["embedding"] = OfflineGrader([SimilarityGrader(embeddings), LexicalGrader()]) if has_encoder else reason
    out["lexical"] = OfflineGrader([LexicalGrader()])
    return out


# --- fitting ------------------------------------------------------------------------


def _fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float, iters: int = 100) -> np.ndarray:
    """Soft-target logistic regression by Newton's method; L2 on the weights, not the bias.
    Returns (weights..., bias) for standardised x."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    reg = np.eye(a.shape[1]) * penalty
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-a @ w))
        grad = a.T @ (p - y) + reg @ w
        hess = a.T @ (a * (p * (1 - p))[:, None]) + reg + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def _log_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    z = np.hstack([x, np.ones((len(x), 1))]) @ w
    p = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_mapping(rows: list[tuple[CheckItem, dict[str, float]]], signals: tuple[str, ...]) -> dict:
    """Fit one grader's LinearMapping on (item, signals) rows of the fit questions."""
    x = np.array([[s[name] for name in signals] for _, s in rows], dtype=float)
    y = np.array([TARGET[item.label] for item, _ in rows])
    groups = np.array([item.question.id for item, _ in rows])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    xs = (x - mean) / std
    cv = {}
    for penalty in PENALTIES:
        losses = []
        for q in sorted(set(groups)):
            test = groups == q
            w = _fit_logistic(xs[~test], y[~test], penalty)
            losses.append(_log_loss(w, xs[test], y[test]) * test.sum())
        cv[penalty] = sum(losses) / len(y)
    penalty = min(cv, key=lambda p: cv[p])
    w = _fit_logistic(xs, y, penalty)
    weights = w[:-1] / std
    bias = float(w[-1] - (w[:-1] * mean / std).sum())
    return {
        "mapping": score_mapping.LinearMapping(signals, tuple(float(v) for v in weights), bias),
        "penalty": penalty,
        "cv_log_loss": {str(k): round(v, 4) for k, v in cv.items()},
        "n": len(y),
    }


def fit_all(items: list[CheckItem], graders: dict[str, object]) -> dict[str, dict]:
    fitted = {}
    fit_items = [it for it in items if it.part == "fit" and it.label in FIT_CLASSES and not is_non_answer(it.answer)]
    for name, grader in graders.items():
        rows = []
        for item in fit_items:
            per_ref, _, _ = grader.signals(item.question, item.answer)
            # the best-matching reference under the current mapping (one each in the demo course)
            best = max(per_ref, key=lambda s: score_mapping.MAPPINGS[name].logit(s))
            rows.append((item, best))
        fitted[name] = fit_mapping(rows, score_mapping.MAPPINGS[name].signals)
    return fitted


# --- reporting ----------------------------------------------------------------------


def print_summary(title: str, summary: dict) -> None:
    print(f"\n{title}")
    print(f"  {'class':10s} {'n':>3s} {'mean':>5s} {'median':>6s} {'min':>4s} {'max':>4s}   verdicts")
    for label in CLASSES:
        if label not in summary["classes"]:
            continue
        c = summary["classes"][label]
        verdicts = summary["verdicts"][label]
        counts = " ".join(f"{v[:7]}={verdicts.get(v, 0)}" for v in VERDICTS if verdicts.get(v, 0))
        print(
            f"  {label:10s} {c['n']:3d} {c['mean']:5.2f} {c['median']:6.2f} {c['min']:4.1f} {c['max']:4.1f}   {counts}"
        )
    print(
        f"  AUC correct/wrong {summary['auc_correct_vs_wrong']:.3f}  correct/partial "
        f"{summary['auc_correct_vs_partial']:.3f}  partial/wrong {summary['auc_partial_vs_wrong']:.3f}  "
        f"correct/wrong_fluent {summary['auc_correct_vs_wrong_fluent']:.3f}"
        f"   answered by {summary['graders']}"
    )
    print(f"  share of correct answers with the verdict correct: {summary['correct_share_verdict_correct']}")
    print(f"  {'FAIL: ' + '; '.join(summary['failures']) if summary['failures'] else 'all thresholds met'}")


def print_confusion(summary: dict) -> None:
    print(f"  confusion (class x verdict): {'':2s}" + " ".join(f"{v[:13]:>13s}" for v in VERDICTS))
    for label in CLASSES:
        row = summary["verdicts"].get(label, {})
        if row:
            print(f"  {'':28s}{label:>10s} " + " ".join(f"{row.get(v, 0):13d}" for v in VERDICTS))


def report(items: list[CheckItem], graders: dict[str, OfflineGrader | str]) -> dict:
    results: dict = {}
    for name, chain in graders.items():
        if isinstance(chain, str):
            print(f"\n== chain answering with: {name} -- SKIPPED ({chain})")
            results[name] = {"skipped": chain}
            continue
        print(f"\n== chain answering with: {name}")
        graded = grade_all(items, chain.grade)
        results[name] = {}
        for part in (*PARTS, "all"):
            subset = [g for g in graded if part == "all" or g[0].part == part]
            summary = summarize(subset)
            results[name][part] = summary
            questions = len({item.question.id for item, _ in subset})
            print_summary(f"-- {name} / {part} ({questions} questions, {len(subset)} answers)", summary)
            if part == "all":
                print_confusion(summary)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="model store (default: settings.model_store, i.e. .state/models)")
    parser.add_argument("--fit", action="store_true", help="refit the score mappings on the fit questions")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    items = load_check_set()
    counts = {c: sum(1 for it in items if it.label == c) for c in CLASSES}
    print(f"check set: {len(items)} answers to {len({it.question.id for it in items})} questions {counts}")
    graders = chains(args.store)
    results: dict = {}
    if args.fit:
        fitters = {name: chain.graders[0] for name, chain in graders.items() if not isinstance(chain, str)}
        fitted = fit_all(items, fitters)
        print("\nfitted mappings (paste into shared/grading/score_mapping.py MAPPINGS):")
        for name, f in fitted.items():
            m = f["mapping"]
            print(f"  {name}: penalty {f['penalty']} (leave-one-question-out log loss {f['cv_log_loss']}), n={f['n']}")
            weights = ", ".join(f"{w:.4f}" for w in m.weights)
            print(f'    "{name}": LinearMapping({m.signals!r}, ({weights}), {m.bias:.4f}),')
            score_mapping.MAPPINGS[name] = replace(m)
        results["fit"] = {n: {**f, "mapping": f["mapping"].as_dict()} for n, f in fitted.items()}
    results["chains"] = report(items, graders)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    failed = [
        f"{name}/{part}"
        for name, parts in results["chains"].items()
        for part, summary in parts.items()
        if isinstance(summary, dict) and summary.get("failures")
    ]
    print(f"\nthresholds missed by: {failed or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
