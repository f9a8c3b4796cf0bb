"""The task-outcome predictor served from INT8 ONNX: ids + 11 history features ->
(P(correct), median seconds).

Built by `model_export/train_predictor.py`. Ids are mapped to embedding rows through
the vocabularies in `predictor_meta.json`; an id the model never saw maps to row 0,
the learned 'unknown' row, and `known()` says so, which is what lets the prediction
service prefer the IRT fallback when that knows the user or topic and the network
does not. Features are encoded by `shared.prediction.features.encode` (the same code
the trainer used).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from shared.models.onnx_model import ServedModel
from shared.prediction.features import N_FEATURES

META_FILE = "predictor_meta.json"


class PredictorModel(ServedModel):
    """predictor.onnx with the id maps it was trained on."""

    name = "predictor"
    default_file = "predictor.onnx"

    def load(self, version_dir: Path) -> None:
        self.meta: dict = json.loads((version_dir / META_FILE).read_text(encoding="utf-8"))
        if len(self.meta.get("feature_names", [])) != N_FEATURES:
            raise ValueError(f"{META_FILE}: expected {N_FEATURES} features, got {self.meta.get('feature_names')}")
        self.users: dict[str, int] = self.meta.get("users", {})
        self.topics: dict[str, int] = self.meta.get("topics", {})
        self.time_head_trained_on: str = self.meta.get("time_head_trained_on", "unknown")

    def known(self, user_id: str, topic_id: str) -> dict[str, bool]:
        return {"user": user_id in self.users, "topic": topic_id in self.topics}

    def predict_batch(
        self, user_ids: list[str], topic_ids: list[str], difficulties: list[int], features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(correct), seconds) per row; `features` is (n, 11) from `features.encode`."""
        feats = np.asarray(features, dtype=np.float32).reshape(-1, N_FEATURES)
        feeds: dict[str, np.ndarray] = {
            "user": np.array([self.users.get(u, 0) for u in user_ids], dtype=np.int64),
            "topic": np.array([self.topics.get(t, 0) for t in topic_ids], dtype=np.int64),
            "difficulty": np.clip(np.array(difficulties, dtype=np.int64), 1, 5),
            "features": feats,
        }
        logit, seconds = self.session.run(feeds)[:2]
        p = 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64).ravel()))
        return p, np.asarray(seconds, dtype=np.float64).ravel()

    def predict(self, user_id: str, topic_id: str, difficulty: int, features: np.ndarray) -> tuple[float, float]:
        p, s = self.predict_batch([user_id], [topic_id], [difficulty], features)
        p_correct, seconds = float(p[0]), float(s[0])
        if not (math.isfinite(p_correct) and math.isfinite(seconds)):
            raise ValueError("predictor produced a non-finite output")
        return p_correct, seconds
