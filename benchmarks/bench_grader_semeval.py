"""The short-answer graders on SemEval-2013 3-way (SciEntsBank held-out sets).

    .venv-train/bin/python benchmarks/bench_grader_semeval.py [--work DIR] [--models DIR] [--out FILE]
    .venv-train/bin/python benchmarks/bench_grader_semeval.py --fallbacks-only --models DIR   # no model rows

Split (model_export.grader_data.grader_split, seed 42, the trainer's own): whole
SciEntsBank questions are held out, 14 for validation (the temperature is fitted there,
which cannot change an arg-max, so its 14 questions are reported too as a second
unseen-questions sample) and 14 for test, imitating the task's "unseen questions" test
set (the same questions as every earlier measurement); 10% of the answers to the
remaining questions are "unseen answers"; the SciEntsBank domains FN, LF and VB are held
out whole ("unseen domains"); the model trains on Beetle + what is left. Nothing below
is tuned on the test questions.

Reported in one run, for the 3-way task (correct / contradictory / incorrect):
- grader model FP32: the trainer's ONNX export (`--work DIR` with grader.onnx and
  grader_labels.json from `python -m model_export.train_grader DIR`; trained here into a
  temporary folder when not given), arg-max of the calibrated probabilities, its input
  built by the serving class from question, reference and answer (label file's
  input_format), the best reference (highest P(correct)) kept as serving does;
- grader model INT8: the same graph quantized by `model_export.quantize.quantize_best`,
  exactly as the build does; plus its ms per answer on one core (onnxruntime
  intra_op_num_threads=1, one answer per call as served) and the parameter count;
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
    HELD_OUT_DOMAINS,
    LABELS,
    Answer,
    GraderDataMissing,
    classification_metrics,
    grader_split,
    load_answers,
    load_beetle,
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
    from shared.models.grader import LEGACY_INPUT_FORMAT, grader_input

    meta = json.loads((work / "grader_labels.json").read_text())
    fmt = meta.get("input_format", LEGACY_INPUT_FORMAT)
    tokenizer = load_training_tokenizer(int(meta.get("max_length", 128)))
    items = [grader_input(fmt, a.question, a.reference, a.answer) for a in check]
    feeds = [tokenize(tokenizer, items[i : i + 32]) for i in range(0, len(items), 32)]
    model = TrainedModel("grader", work / "grader.onnx", [], {}, {}, feeds, LOGITS)
    path, agreement, _ = quantize_best(model, work / "bench-int8")
    return path, agreement.as_dict()


def served(work: Path, onnx_file: Path, threads: int | None = None) -> object:
    """The serving class on a folder laid out like a published version."""
    from model_export.base_model import minilm_dir
    from shared.models.grader import GraderModel

    folder = work / f"served-{onnx_file.stem}"
    folder.mkdir(exist_ok=True)
    for src in (onnx_file, work / "grader_labels.json", minilm_dir() / "tokenizer.json"):
        shutil.copyfile(src, folder / src.name)
    return GraderModel(folder, {"file": onnx_file.name}, threads=threads)


def model_probs(model: object, answers: list[Answer]) -> np.ndarray:
    """Calibrated probabilities per answer, columns in LABELS order: every reference of
    the question scored (input built by the serving class) and the one with the highest
    P(correct) kept, as serving keeps the best-matching reference."""
    columns = [model.labels.index(label) for label in LABELS]  # to the data's label order
    rows = []
    for a in answers:
        probs = model.probabilities([model.pair(a.question, ref, a.answer) for ref in a.references])[:, columns]
        rows.append(probs[int(probs[:, INDEX["correct"]].argmax())])
    return np.stack(rows)


def eval_model(model: object, answers: list[Answer]) -> dict:
    return classification_metrics(_truth(answers), model_probs(model, answers).argmax(-1))


def ms_per_answer(model: object, answers: list[Answer], n: int = 300) -> float:
    """Wall ms per answer, one answer (one reference) per call, as served."""
    items = [model.pair(a.question, a.reference, a.answer) for a in answers[:n]]
    model.probabilities(items[:5])  # warm-up
    started = time.perf_counter()
    for item in items:
        model.probabilities([item])
    return round(1000 * (time.perf_counter() - started) / max(1, len(items)), 2)


def parameter_count(onnx_file: Path) -> int:
    """Elements of the graph's weight tensors (INT8 weights count once, scales too)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_file)).graph
    return int(sum(numpy_helper.to_array(t).size for t in graph.initializer))


def eval_model_bands(model: object, answers: list[Answer]) -> dict:
    """The model alone through 10 * P(correct) and the verdict bands (how it was served
    before the check-set mapping): correct >= 7, contradictory when most likely, else incorrect."""
    probs = model_probs(model, answers)  # columns in LABELS order
    verdicts = [score_mapping.from_class_probs(row, list(LABELS))[1] for row in probs]
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
    return Question(a.question_id, "semeval", "short_answer", a.question, 2, references=a.references)


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
    embeddings.warm([t for a in answers for t in (a.answer, a.question, *a.references)])
    return eval_served(SimilarityGrader(embeddings), answers)


def eval_lexical(answers: list[Answer]) -> dict:
    return eval_served(LexicalGrader(), answers)


def eval_model_served(model: object, encoder: object, answers: list[Answer]) -> dict:
    embeddings = _Embeddings(encoder)
    embeddings.warm([t for a in answers for t in (a.answer, a.question, *a.references)])
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
    try:
        beetle = load_beetle()
    except GraderDataMissing:
        beetle = []
    split = grader_split(answers, beetle)
    # The validation questions are unseen too: only the temperature was fitted there, which
    # cannot change an arg-max, so they are a second, independent unseen-questions sample.
    sets = {
        "unseen_answers": split.unseen_answers,
        "unseen_q_test": split.test,
        "unseen_q_val": split.val,
        "unseen_domains": split.unseen_domains,
    }
    results: dict = {"split": split.sizes(), "held_out_domains": list(HELD_OUT_DOMAINS), "methods": {}}

    encoder = find_encoder(args.models)
    if not args.fallbacks_only:
        work = trained_work_dir(args.work)
        # The recipe is chosen on the check answers the build uses (train_grader: the test
        # questions), so this INT8 row is the graph `make models` ships.
        int8_path, agreement = quantized(work, split.test)
        results["int8_agreement_on_check_set"] = {k: agreement[k] for k in ("scheme", "values", "passed")}
        for name, onnx_file in (("grader model FP32", work / "grader.onnx"), ("grader model INT8", int8_path)):
            model = served(work, onnx_file)
            results["methods"][name] = {s: eval_model(model, part) for s, part in sets.items()}
        one_core = served(work, int8_path, threads=1)
        results["int8_one_core_ms_per_answer"] = ms_per_answer(one_core, split.test)
        results["parameters"] = {
            "fp32_graph": parameter_count(work / "grader.onnx"),
            "int8_graph": parameter_count(int8_path),
            "int8_file_mb": round(int8_path.stat().st_size / 2**20, 1),
        }
        results["input_format"] = model.input_format
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

    print(f"\nSemEval-2013 3-way, split {results['split']}, held-out domains {results['held_out_domains']}")
    print(f"input format: {results.get('input_format', 'not run')}")
    print(f"INT8 vs FP32 on the build's check answers: {results.get('int8_agreement_on_check_set', 'not run')}")
    print(f"INT8 one core: {results.get('int8_one_core_ms_per_answer', 'not run')} ms per answer")
    print(f"parameters: {results.get('parameters', 'not run')}\n")
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
