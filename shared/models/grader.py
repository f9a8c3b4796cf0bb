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

import numpy as np

from shared.models.onnx_model import OnnxModel, load_tokenizer

LABELS_FILE = "grader_labels.json"
TOKENIZER_FILE = "tokenizer.json"


class GraderModel:
    """Thin wrapper over grader.onnx; constructed by the registry as (version_dir, entry)."""

    name = "grader"

    def __init__(self, version_dir: Path, entry: dict | None = None, *, threads: int | None = None) -> None:
        version_dir = Path(version_dir)
        entry = entry or {}
        meta = json.loads((version_dir / LABELS_FILE).read_text(encoding="utf-8"))
        self.labels: list[str] = list(meta["labels"])
        if sorted(self.labels) != ["contradictory", "correct", "incorrect"]:
            raise ValueError(f"{LABELS_FILE}: unexpected labels {self.labels}")
        self.temperature = float(meta.get("temperature", 1.0))
        if self.temperature <= 0:
            raise ValueError(f"{LABELS_FILE}: temperature must be positive")
        self.max_length = int(meta.get("max_length", 128))
        self.tokenizer = load_tokenizer(version_dir / TOKENIZER_FILE, max_length=self.max_length)
        self.session = OnnxModel(version_dir / entry.get("file", "grader.onnx"), threads=threads)
        self.metrics: dict = entry.get("metrics", {})

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, shape (n, 3), for (reference, answer) pairs."""
        if not pairs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        encodings = self.tokenizer.encode_batch([(ref, ans) for ref, ans in pairs])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return self.session.run(feeds)[0]

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Temperature-scaled softmax, shape (n, 3), columns in `self.labels` order."""
        z = self.logits(pairs).astype(np.float64) / self.temperature
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def predict(self, reference: str, answer: str) -> dict[str, float]:
        """{label: probability} for one pair."""
        row = self.probabilities([(reference, answer)])[0]
        return {label: float(p) for label, p in zip(self.labels, row, strict=True)}
