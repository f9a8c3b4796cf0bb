"""The short-answer grader served from INT8 ONNX: (question, reference, answer) -> class
probabilities.

Built by `model_export/train_grader.py` (MiniLM cross-encoder fine-tuned on SemEval-2013
SciEntsBank + Beetle 3-way). `grader_labels.json` says how the pair is built
(`input_format`, see `grader_input`); training and serving both call `grader_input`, so
they cannot drift apart. A label file without the key is a model from before the key:
`reference` (segment A = the reference answer alone). The graph returns raw logits over correct / contradictory /
incorrect; this class applies the temperature fitted on held-out questions, so the
probabilities are calibrated and `shared.grading.score_mapping` can turn P(correct)
into a 0-10 score. Only onnxruntime, tokenizers and numpy at request time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.models.onnx_model import ServedModel, calibrated_softmax, load_tokenizer, tokenize

LABELS_FILE = "grader_labels.json"
TOKENIZER_FILE = "tokenizer.json"

#: input_format -> what segment A holds (segment B is always the student answer)
INPUT_FORMATS: dict[str, str] = {
    "reference": "[CLS] reference [SEP] student answer [SEP]",
    "reference_question": "[CLS] reference [SEP] question [SEP] student answer [SEP] "
    "(segment A = reference, literal [SEP], question; truncation cuts the question's end first)",
}
#: what a label file without `input_format` means (the models published before the key)
LEGACY_INPUT_FORMAT = "reference"


def grader_input(input_format: str, question: str, reference: str, answer: str) -> tuple[str, str]:
    """The (segment A, segment B) pair the grader reads, for training and serving alike."""
    if input_format == "reference" or not question.strip():
        return reference, answer
    if input_format == "reference_question":
        return f"{reference} [SEP] {question.strip()}", answer
    raise ValueError(f"unknown grader input_format {input_format!r} (known: {sorted(INPUT_FORMATS)})")


class GraderModel(ServedModel):
    """grader.onnx with its label map, temperature and tokenizer."""

    name = "grader"
    default_file = "grader.onnx"
    warm_up_input = (("What is a loop?", "It repeats code."),)

    def load(self, version_dir: Path) -> None:
        meta = json.loads((version_dir / LABELS_FILE).read_text(encoding="utf-8"))
        self.labels: list[str] = list(meta["labels"])
        if sorted(self.labels) != ["contradictory", "correct", "incorrect"]:
            raise ValueError(f"{LABELS_FILE}: unexpected labels {self.labels}")
        self.temperature = float(meta.get("temperature", 1.0))
        if self.temperature <= 0:
            raise ValueError(f"{LABELS_FILE}: temperature must be positive")
        self.max_length = int(meta.get("max_length", 128))
        self.input_format = str(meta.get("input_format", LEGACY_INPUT_FORMAT))
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(f"{LABELS_FILE}: unknown input_format {self.input_format!r}")
        self.tokenizer = load_tokenizer(version_dir / TOKENIZER_FILE, max_length=self.max_length)

    def pair(self, question: str, reference: str, answer: str) -> tuple[str, str]:
        """The model's input for one (question text, reference, answer), per `input_format`."""
        return grader_input(self.input_format, question, reference, answer)

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, shape (n, 3), for pairs built by `pair` (segment A, answer)."""
        if not pairs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.infer(pairs)

    def preprocess(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        """Cross-encoder feeds: each (segment A, answer) pair as one [SEP]-joined input."""
        return tokenize(self.tokenizer, [(first, ans) for first, ans in inputs])

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Temperature-scaled softmax, shape (n, 3), columns in `self.labels` order."""
        return calibrated_softmax(self.logits(pairs), self.temperature)

    def predict(self, reference: str, answer: str, question: str = "") -> dict[str, float]:
        """{label: probability} for one answer against one reference (and the question)."""
        row = self.probabilities([self.pair(question, reference, answer)])[0]
        return {label: float(p) for label, p in zip(self.labels, row, strict=True)}
