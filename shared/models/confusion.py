"""The confusion detector served from INT8 ONNX: last 3 student messages -> P(confused).

Built by `model_export/train_confusion.py` (a GRU). Its inputs, per message, oldest first:
- the message's 384-d sentence embedding (unit length, from the encoder model);
- three timing features, defined once here (`timing_features`) and used by training too:
  1. `present`: 1 for a real message, 0 for padding (a conversation shorter than 3);
  2. `gap`: log1p(seconds since the previous message in the conversation, usually the
     tutor's reply; clipped to an hour) / log1p(3600); 0 when unknown (first message).
     Re-reading a reply for minutes, or firing back "??" within seconds, are both signs;
  3. `length`: log1p(characters, clipped to 2000) / log1p(2000). Confused follow-ups are
     often very short ("huh?") or long re-statements.
Shorter histories are left-padded (zeros, present=0) so the newest message is always in
the last position, where the GRU's final state reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.models.onnx_model import ServedModel

CONFIG_FILE = "confusion_config.json"
WINDOW = 3
EMBEDDING_DIM = 384
N_TIMING = 3
MAX_GAP_S = 3600.0
MAX_CHARS = 2000


@dataclass(frozen=True)
class MessageTiming:
    """What is known about when and how a student message was written."""

    seconds_since_previous: float | None
    """Seconds since the previous message in the conversation; None if it is the first."""
    chars: int
    """Length of the message in characters."""


def timing_features(timing: MessageTiming) -> list[float]:
    """[present, gap, length] for one real message (see the module docstring)."""
    gap = timing.seconds_since_previous
    gap_feature = 0.0 if gap is None else math.log1p(min(max(gap, 0.0), MAX_GAP_S)) / math.log1p(MAX_GAP_S)
    length = math.log1p(min(max(timing.chars, 0), MAX_CHARS)) / math.log1p(MAX_CHARS)
    return [1.0, gap_feature, length]


def build_inputs(embeddings: np.ndarray, timing: Sequence[MessageTiming] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One window as graph inputs: (1, 3, 384) embeddings and (1, 3, 3) timing features.

    `embeddings` holds the last n (0..3) messages, oldest first; more than 3 keeps the
    newest 3. `timing` is a MessageTiming per message, or an (n, 3) array of already
    computed features.
    """
    emb = np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
    if isinstance(timing, np.ndarray):
        feats = np.asarray(timing, dtype=np.float32).reshape(-1, N_TIMING)
    else:
        feats = np.array([timing_features(t) for t in timing], dtype=np.float32).reshape(-1, N_TIMING)
    if len(emb) != len(feats):
        raise ValueError(f"{len(emb)} embeddings but {len(feats)} timing rows")
    emb, feats = emb[-WINDOW:], feats[-WINDOW:]
    n = len(emb)
    out_emb = np.zeros((1, WINDOW, EMBEDDING_DIM), dtype=np.float32)
    out_feat = np.zeros((1, WINDOW, N_TIMING), dtype=np.float32)
    if n:
        out_emb[0, WINDOW - n :] = emb
        out_feat[0, WINDOW - n :] = feats
    return out_emb, out_feat


class ConfusionModel(ServedModel):
    """confusion.onnx (the GRU over the last messages) with its threshold."""

    name = "confusion"
    default_file = "confusion.onnx"

    def load(self, version_dir: Path) -> None:
        config_path = version_dir / CONFIG_FILE
        self.config: dict = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        self.threshold = float(self.config.get("threshold", 0.5))

    def predict(self, embeddings: np.ndarray, timing: Sequence[MessageTiming] | np.ndarray) -> float:
        """P(confused) after the newest of the given messages (oldest first, up to 3).

        With no message at all there is no evidence of confusion: 0.0 without running
        the graph (the model never saw an empty window in training).
        """
        emb, feats = build_inputs(embeddings, timing)
        if not feats[0, :, 0].any():
            return 0.0
        logit = float(np.ravel(self.session.run({"embeddings": emb, "timing": feats})[0])[0])
        return float(1.0 / (1.0 + math.exp(-logit)))
