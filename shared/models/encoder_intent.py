"""The encoder with the intent head grafted on: one pass, the vector and the intent.

Built by `model_export/intent_head.py`: the version's INT8 `encoder.onnx` with an attention
head on its hidden states merged into the same graph, so one run over a message yields the
retrieval vector (`sentence_embedding`, bit for bit the encoder's, checked at build time)
and the intent logits. Chat reads a message with it instead of running the intent model
and then the encoder (issue 14: one transformer pass per turn instead of two). A version
whose head did not pass its gate has no `encoder_intent`; chat then runs both models.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from shared.models.intent import IntentPrediction, known_word_share, predictions, read_label_file, whole_words
from shared.models.onnx_model import ServedModel, calibrated_softmax, load_tokenizer, tokenize

LABELS_FILE = "encoder_intent_labels.json"
TOKENIZER_FILE = "tokenizer.json"


class EncoderIntentModel(ServedModel):
    """encoder_intent.onnx with its label map, temperature and the encoder's tokenizer."""

    name = "encoder_intent"
    default_file = "encoder_intent.onnx"
    warm_up_input = ("how do loops work?",)

    def load(self, version_dir: Path) -> None:
        meta = read_label_file(version_dir / LABELS_FILE, default_max_length=256)
        self.labels, self.temperature, self.thresholds = meta.labels, meta.temperature, meta.thresholds
        # the encoder's own reading of a message (its max_length), so the vector is its vector
        self.tokenizer = load_tokenizer(version_dir / TOKENIZER_FILE, max_length=meta.max_length)

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        return whole_words(self.tokenizer)

    def preprocess(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        return tokenize(self.tokenizer, list(inputs))

    def read(self, text: str) -> tuple[np.ndarray, IntentPrediction]:
        """One message: its unit vector (dimension,) and its calibrated intent. One text
        per run, as the encoder reads a message alone (dynamic INT8 quantization sees
        only this text's activations)."""
        vector, logits = self.session.run(self.preprocess([text]))
        return vector[0], predictions(calibrated_softmax(logits, self.temperature), self.labels)[0]

    def known_word_share(self, text: str) -> float:
        """See `shared.models.intent.known_word_share`."""
        return known_word_share(text, self.vocabulary)
