"""The short-answer grader served from INT8 ONNX: (reference, answer) -> class probabilities.

Built by `model_export/train_grader.py` (MiniLM cross-encoder fine-tuned on SemEval-2013
SciEntsBank 3-way). The graph returns raw logits over correct / contradictory /
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


class GraderModel(ServedModel):
    """grader.onnx with its label map, temperature and tokenizer."""

    name = "grader"
    default_file = "grader.onnx"

    def load(self, version_dir: Path) -> None:
        meta = json.loads((version_dir / LABELS_FILE).read_text(encoding="utf-8"))
        self.labels: list[str] = list(meta["labels"])
        if sorted(self.labels) != ["contradictory", "correct", "incorrect"]:
            raise ValueError(f"{LABELS_FILE}: unexpected labels {self.labels}")
        self.temperature = float(meta.get("temperature", 1.0))
        if self.temperature <= 0:
            raise ValueError(f"{LABELS_FILE}: temperature must be positive")
        self.max_length = int(meta.get("max_length", 128))
        self.tokenizer = load_tokenizer(version_dir / TOKENIZER_FILE, max_length=self.max_length)

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, shape (n, 3), for (reference, answer) pairs."""
        if not pairs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.infer(pairs)

    def preprocess(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        """Cross-encoder feeds: each (reference, answer) pair as one [SEP]-joined input."""
        return tokenize(self.tokenizer, [(ref, ans) for ref, ans in inputs])

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Temperature-scaled softmax, shape (n, 3), columns in `self.labels` order."""
        return calibrated_softmax(self.logits(pairs), self.temperature)

    def predict(self, reference: str, answer: str) -> dict[str, float]:
        """{label: probability} for one pair."""
        row = self.probabilities([(reference, answer)])[0]
        return {label: float(p) for label, p in zip(self.labels, row, strict=True)}
