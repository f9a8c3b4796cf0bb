"""The intent classifier served from INT8 ONNX: query text -> calibrated intent probabilities.

Built by `model_export/train_intent.py` (fine-tuned MiniLM). The graph returns raw
logits; this class divides them by the temperature fitted on validation and applies the
softmax, so `confidence` is a calibrated probability the product can threshold: below
`rephrase` (0.40) the tutor asks the student to rephrase, below `human_review` (0.60) the
query is queued for a human label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from shared.intent_thresholds import HUMAN_REVIEW_BELOW, REPHRASE_BELOW
from shared.models.onnx_model import ServedModel, calibrated_softmax, load_tokenizer, tokenize

LABELS_FILE = "intent_labels.json"
TOKENIZER_FILE = "tokenizer.json"
DEFAULT_THRESHOLDS = {"rephrase": REPHRASE_BELOW, "human_review": HUMAN_REVIEW_BELOW}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class LabelFile:
    """What an intent label file says: the labels in logit order, the temperature fitted
    on validation, the product's thresholds and the tokenizer's max_length."""

    labels: list[str]
    temperature: float
    thresholds: dict[str, float]
    max_length: int


def read_label_file(path: Path, *, default_max_length: int) -> LabelFile:
    """Read and check a label file (`intent_labels.json`, `encoder_intent_labels.json`)."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    temperature = float(meta.get("temperature", 1.0))
    if temperature <= 0:
        raise ValueError(f"{path.name}: temperature must be positive")
    return LabelFile(
        labels=list(meta["labels"]),
        temperature=temperature,
        thresholds={**DEFAULT_THRESHOLDS, **meta.get("thresholds", {})},
        max_length=int(meta.get("max_length", default_max_length)),
    )


def whole_words(tokenizer: Any) -> frozenset[str]:
    """The tokenizer's whole-word entries (no `##` continuation pieces)."""
    return frozenset(w for w in tokenizer.get_vocab() if w.isalpha())


@dataclass(frozen=True)
class IntentPrediction:
    """The most likely intent, its calibrated probability, and every intent's probability."""

    label: str
    confidence: float
    probs: dict[str, float]


class IntentModel(ServedModel):
    """intent.onnx with its label map, temperature, thresholds and tokenizer."""

    name = "intent"
    default_file = "intent.onnx"
    warm_up_input = ("how do loops work?",)

    def load(self, version_dir: Path) -> None:
        meta = read_label_file(version_dir / LABELS_FILE, default_max_length=128)
        self.labels, self.temperature, self.thresholds = meta.labels, meta.temperature, meta.thresholds
        self.tokenizer = load_tokenizer(version_dir / TOKENIZER_FILE, max_length=meta.max_length)

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw (uncalibrated) logits, shape (n, len(labels))."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.infer(texts)

    def preprocess(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        """BERT feeds for the query texts."""
        return tokenize(self.tokenizer, list(inputs))

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Temperature-scaled softmax, shape (n, len(labels))."""
        return calibrated_softmax(self.logits(texts), self.temperature)

    def predict(self, texts: list[str]) -> list[IntentPrediction]:
        """One prediction per text, in order. Empty or blank texts are classified as
        given (the tokenizer yields [CLS] [SEP]); callers decide whether to ask at all."""
        return predictions(self.probabilities(list(texts)), self.labels)

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        return whole_words(self.tokenizer)

    def known_word_share(self, text: str) -> float:
        """See `known_word_share`: how much of the text the model can read as words."""
        return known_word_share(text, self.vocabulary)

    def action(self, prediction: IntentPrediction) -> str:
        """What the product does with a prediction (see `action_for`)."""
        return action_for(prediction.confidence, self.thresholds)


def predictions(probs: np.ndarray, labels: list[str]) -> list[IntentPrediction]:
    """One prediction per row of calibrated probabilities (n, len(labels))."""
    out = []
    for row in probs:
        best = int(row.argmax())
        out.append(
            IntentPrediction(
                label=labels[best],
                confidence=float(row[best]),
                probs={label: float(p) for label, p in zip(labels, row, strict=True)},
            )
        )
    return out


def action_for(confidence: float, thresholds: dict[str, float] = DEFAULT_THRESHOLDS) -> str:
    """ "rephrase" below the rephrase threshold, "human_review" below the review threshold
    (answer, but queue the query for a human label), else "act"."""
    if confidence < thresholds["rephrase"]:
        return "rephrase"
    if confidence < thresholds["human_review"]:
        return "human_review"
    return "act"


def known_word_share(text: str, vocabulary: frozenset[str] | set[str]) -> float:
    """The share of the text's alphabetic words that the tokenizer knows as whole words
    (1.0 when it has none). Real queries score high even with a typo or an identifier
    ("wat is a varible": 0.75); keyboard mashing scores 0 ("asdf qwer zxcv"): the
    classifier only sees word pieces there, and its confidence means nothing."""
    words = _WORD.findall(text.lower())
    if not words:
        return 1.0
    return sum(w in vocabulary for w in words) / len(words)
