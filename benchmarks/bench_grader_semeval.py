"""The short-answer graders on SemEval-2013 SciEntsBank 3-way, held-out questions.

    .venv-train/bin/python benchmarks/bench_grader_semeval.py [--work DIR] [--models DIR] [--out FILE]
    .venv-train/bin/python benchmarks/bench_grader_semeval.py --fallbacks-only --models DIR   # no model rows

Split (model_export.grader_data.split_by_question, seed 42, the trainer's own): whole
questions are held out from the SciEntsBank training XML, 14 for validation (the
temperature is fitted there, which cannot change an arg-max, so its 14 questions are
reported too as a second unseen-questions sample) and 14 for test, imitating the task's "unseen questions"
test set; 10% of the answers to the remaining 107 questions are held out as "unseen
answers". Nothing below is tuned on the test questions.

Reported in one run, for the 3-way task (correct / contradictory / incorrect):
- grader model FP32: the trainer's ONNX export (`--work DIR` with grader.onnx and
  grader_labels.json from `python -m model_export.train_grader DIR`; trained here into a
  temporary folder when not given), arg-max of the calibrated probabilities;
- grader model INT8: the same graph quantized by `model_export.quantize.quantize_best`,
  exactly as the build does;
- grader model INT8, 10*P(correct) bands: the model alone through the verdict bands (how
  it was served before the check-set mapping);
- model chain INT8 (served mapping): what serving answers - the INT8 model's
  probabilities combined with the encoder's similarities and word overlap through the
  score mapping fitted on the demo check set (shared/grading/score_mapping.py); verdict
  correct -> correct, contradictory -> contradictory, anything else -> incorrect;
- embedding-similarity fallback: the SimilarityGrader as served (MiniLM cosine with the
  reference and the question, content-word overlap, the fitted mapping); it cannot detect
  contradiction. Needs a published encoder (`--models`, a version folder; default the
  current version of settings.model_store);
- lexical-overlap fallback: the LexicalGrader as served (content-word overlap, plain and
  question-demoted, the fitted mapping);
- majority class, for scale.
Measures: accuracy, macro-F1, weighted-F1 (the task's), per-class F1.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model_export.grader_data import (  # noqa: E402
    LABELS,
    Answer,
    classification_metrics,
    load_answers,
    split_by_question,
)
from shared.grading import score_mapping  # noqa: E402
from shared.grading.contract import Question  # noqa: E402
from shared.grading.offline import LexicalGrader, ModelGrader, SimilarityGrader  # noqa: E402

INDEX = {label: i for i, label in enumerate(LABELS)}


def _truth(answers: list[Answer]) -> np.ndarray:
    return np.array([INDEX[a.label] for a in answers])


def _binary_to_3way(verdicts: list[str]) -> np.ndarray:
    return np.array([INDEX["correct"] if v == "correct" else INDEX["incorrect"] for v in verdicts])


def trained_work_dir(work: Path | None) -> Path:
    if work is not None and (work / "grader.onnx").is_file():
        return work
    from model_export.train_grader import train

    target = work or Path(tempfile.mkdtemp(prefix="bench-grader-"))
    logging.info("training the grader into %s", target)
    train(target)
    return target


def quantized(work: Path, check: list[Answer]) -> tuple[Path, dict]:
    from model_export.quantize import quantize_best
    from model_export.trained import LOGITS, TrainedModel
    from model_export.training import load_training_tokenizer, tokenize

    tokenizer = load_training_tokenizer()
    items = [(a.reference, a.answer) for a in check]
    feeds = [tokenize(tokenizer, items[i : i + 32]) for i in range(0, len(items), 32)]
    model = TrainedModel("grader", work / "grader.onnx", [], {}, {}, feeds, LOGITS)
    path, agreement, _ = quantize_best(model, work / "bench-int8")
    return path, agreement.as_dict()


def served(work: Path, onnx_file: Path) -> object:
    """The serving class on a folder laid out like a published version."""
    from model_export.base_model import minilm_dir
    from shared.models.grader import GraderModel

    folder = work / f"served-{onnx_file.stem}"
    folder.mkdir(exist_ok=True)
    for src in (onnx_file, work / "grader_labels.json", minilm_dir() / "tokenizer.json"):
        shutil.copyfile(src, folder / src.name)
    return GraderModel(folder, {"file": onnx_file.name})


def eval_model(model: object, answers: list[Answer]) -> dict:
    pairs = [(a.reference, a.answer) for a in answers]
    started = time.perf_counter()
    probs = np.concatenate([model.probabilities(pairs[i : i + 32]) for i in range(0, len(pairs), 32)])
    seconds = time.perf_counter() - started
    columns = [model.labels.index(label) for label in LABELS]  # to the data's label order
    out = classification_metrics(_truth(answers), probs[:, columns].argmax(-1))
    out["ms_per_answer"] = round(1000 * seconds / max(1, len(pairs)), 2)
    return out


def eval_model_bands(model: object, answers: list[Answer]) -> dict:
    """The model alone through 10 * P(correct) and the verdict bands (how it was served
    before the check-set mapping): correct >= 7, contradictory when most likely, else incorrect."""
    pairs = [(a.reference, a.answer) for a in answers]
    probs = np.concatenate([model.probabilities([p]) for p in pairs])
    verdicts = [score_mapping.from_class_probs(row, model.labels)[1] for row in probs]
    pred = np.array(
        [INDEX["contradictory"] if v == "contradictory" else INDEX["correct" if v == "correct" else "incorrect"]
         for v in verdicts]
    )  # fmt: skip
    return classification_metrics(_truth(answers), pred)


def find_encoder(models: Path | None) -> object | None:
    from shared.models.encoder import EncoderModel

    folder = models
    if folder is None:
        from shared.artifacts.versions import read_current
        from shared.config import get_settings

        root = Path(str(get_settings().model_store))
        try:
            from shared.artifacts.store import open_store

            pointer = read_current(open_store(str(root)))
        except Exception:  # noqa: BLE001 - no store: the row is skipped
            pointer = None
        folder = root / pointer.version if pointer else None
    if folder is None or not (folder / "manifest.json").is_file():
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest.get("models", {}).get("encoder")
    return EncoderModel(folder, entry) if entry else None


class _Embeddings:
    """An encoder as the graders' embedding service (vectors cached by text)."""

    def __init__(self, encoder: object) -> None:
        self.encoder = encoder
        self.model_name = "bench"
        self._cache: dict[str, np.ndarray] = {}

    def warm(self, texts: list[str]) -> None:
        todo = sorted({t for t in texts if t not in self._cache})
        for i in range(0, len(todo), 64):
            chunk = todo[i : i + 64]
            self._cache.update(zip(chunk, self.encoder.embed(chunk), strict=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        self.warm(list(texts))
        return np.stack([self._cache[t] for t in texts])


class _Registry:
    """The one grader model, as ModelGrader reads it from a registry."""

    version = "bench"

    def __init__(self, model: object) -> None:
        self.model = model

    def get(self, name: str) -> object:
        return self.model


def _question(a: Answer) -> Question:
    return Question(a.question_id, "semeval", "short_answer", a.question, 2, references=(a.reference,))


def eval_served(grader: object, answers: list[Answer]) -> dict:
    """The serving grader's verdict (signals + fitted score mapping), 3-way: contradictory
    when it says so, correct, anything else incorrect."""
    verdicts = [grader.grade(_question(a), a.answer).verdict for a in answers]
    pred = np.array(
        [INDEX["contradictory"] if v == "contradictory" else INDEX["correct" if v == "correct" else "incorrect"]
         for v in verdicts]
    )  # fmt: skip
    return classification_metrics(_truth(answers), pred)


def eval_similarity(encoder: object, answers: list[Answer]) -> dict:
    embeddings = _Embeddings(encoder)
    embeddings.warm([t for a in answers for t in (a.answer, a.question, a.reference)])
    return eval_served(SimilarityGrader(embeddings), answers)


def eval_lexical(answers: list[Answer]) -> dict:
    return eval_served(LexicalGrader(), answers)


def eval_model_served(model: object, encoder: object, answers: list[Answer]) -> dict:
    embeddings = _Embeddings(encoder)
    embeddings.warm([t for a in answers for t in (a.answer, a.question, a.reference)])
    return eval_served(ModelGrader(_Registry(model), embeddings), answers)


def eval_majority(train: list[Answer], answers: list[Answer]) -> dict:
    majority = max(LABELS, key=lambda lab: sum(1 for a in train if a.label == lab))
    return classification_metrics(_truth(answers), np.full(len(answers), INDEX[majority]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="trainer output folder (grader.onnx FP32 + grader_labels.json)")
    parser.add_argument("--models", type=Path, help="a published version folder holding the encoder")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--fallbacks-only", action="store_true", help="skip the grader model rows (no training)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    try:
        answers = load_answers()
    except FileNotFoundError as exc:
        print(f"SKIP: {exc}")
        return 0
    split = split_by_question(answers)
    # The validation questions are unseen too: only the temperature was fitted there, which
    # cannot change an arg-max, so they are a second, independent unseen-questions sample.
    sets = {"unseen_questions": split.test, "unseen_q_val": split.val, "unseen_answers": split.unseen_answers}
    results: dict = {"split": split.sizes(), "methods": {}}

    encoder = find_encoder(args.models)
    if not args.fallbacks_only:
        work = trained_work_dir(args.work)
        int8_path, agreement = quantized(work, split.val)
        results["int8_agreement_on_val"] = {k: agreement[k] for k in ("scheme", "values", "passed")}
        for name, onnx_file in (("grader model FP32", work / "grader.onnx"), ("grader model INT8", int8_path)):
            model = served(work, onnx_file)
            results["methods"][name] = {s: eval_model(model, part) for s, part in sets.items()}
        results["methods"]["grader model INT8, 10*P(correct) bands"] = {
            s: eval_model_bands(model, p) for s, p in sets.items()
        }
        if encoder is not None:
            results["methods"]["model chain INT8 (served mapping)"] = {
                s: eval_model_served(model, encoder, p) for s, p in sets.items()
            }
    if encoder is None:
        print("note: no published encoder found (pass --models <version folder>): similarity rows skipped")
    else:
        results["methods"]["embedding similarity (fallback)"] = {
            s: eval_similarity(encoder, p) for s, p in sets.items()
        }
    results["methods"]["lexical overlap (last fallback)"] = {s: eval_lexical(p) for s, p in sets.items()}
    results["methods"]["majority class"] = {s: eval_majority(split.train, p) for s, p in sets.items()}

    print(f"\nSciEntsBank 3-way, split {results['split']}")
    print(f"INT8 vs FP32 on validation answers: {results.get('int8_agreement_on_val', 'not run')}\n")
    header = f"{'method':40s} | {'set':16s} | {'acc':>6s} | {'macroF1':>7s} | {'wF1':>6s} | per-class F1 (c/contra/i)"
    print(header)
    print("-" * len(header))
    for method, per_set in results["methods"].items():
        for set_name, m in per_set.items():
            pc = m["f1_per_class"]
            print(
                f"{method:40s} | {set_name:16s} | {m['accuracy']:6.3f} | {m['macro_f1']:7.3f} | "
                f"{m['weighted_f1']:6.3f} | {pc['correct']:.2f}/{pc['contradictory']:.2f}/{pc['incorrect']:.2f}"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
