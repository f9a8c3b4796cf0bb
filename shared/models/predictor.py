"""The task-outcome predictor served from INT8 ONNX: ids + 11 history features + the
last attempts as a sequence -> (P(correct), median seconds).

Built by `model_export/train_predictor.py`. Ids are mapped to embedding rows through
the vocabularies in `predictor_meta.json`; an id the model never saw maps to row 0,
the learned 'unknown' row, and `known()` says so, which is what lets the prediction
service prefer the IRT fallback when that knows the user or topic and the network
does not. Features are encoded by `shared.prediction.features.encode` and the recent
attempts by `encode_recent` (the same code the trainer used). `recent_window` (from the
meta file) is how many of the newest attempts the graph reads; 0 for a version built
before the sequence input, whose graph simply does not take those feeds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from shared.models.onnx_model import ServedModel
from shared.prediction.features import N_FEATURES, RECENT_STEP_FEATURES, encode_recent

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
        self.recent_window: int = int(self.meta.get("recent_window", 0))
        steps = self.meta.get("recent_step_features", list(RECENT_STEP_FEATURES))
        if self.recent_window and list(steps) != list(RECENT_STEP_FEATURES):
            raise ValueError(f"{META_FILE}: recent step features {steps} != {list(RECENT_STEP_FEATURES)}")

    def known(self, user_id: str, topic_id: str) -> dict[str, bool]:
        return {"user": user_id in self.users, "topic": topic_id in self.topics}

    def predict_batch(
        self,
        user_ids: list[str],
        topic_ids: list[str],
        difficulties: list[int],
        features: np.ndarray,
        recent: list[list[tuple[str, float]]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(correct), seconds) per row; `features` is (n, 11) from `features.encode`,
        `recent` per row the user's newest attempts as (topic id, credit), oldest first
        (`features.recent_attempts`); None means no attempts."""
        feats = np.asarray(features, dtype=np.float32).reshape(-1, N_FEATURES)
        feeds: dict[str, np.ndarray] = {
            "user": np.array([self.users.get(u, 0) for u in user_ids], dtype=np.int64),
            "topic": np.array([self.topics.get(t, 0) for t in topic_ids], dtype=np.int64),
            "difficulty": np.clip(np.array(difficulties, dtype=np.int64), 1, 5),
            "features": feats,
        }
        if self.recent_window:
            window = self.recent_window
            recent_topic = np.zeros((len(topic_ids), window), dtype=np.int64)
            steps = np.zeros((len(topic_ids), window, len(RECENT_STEP_FEATURES)), dtype=np.float32)
            for i, topic_id in enumerate(topic_ids):
                ids, steps[i] = encode_recent(recent[i] if recent else [], topic_id, window)
                recent_topic[i] = [self.topics.get(k, 0) if k is not None else 0 for k in ids]
            feeds |= {"recent_topic": recent_topic, "recent": steps}
        logit, seconds = self.session.run(feeds)[:2]
        p = 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64).ravel()))
        return p, np.asarray(seconds, dtype=np.float64).ravel()

    def predict(
        self,
        user_id: str,
        topic_id: str,
        difficulty: int,
        features: np.ndarray,
        recent: list[tuple[str, float]] | None = None,
    ) -> tuple[float, float]:
        p, s = self.predict_batch([user_id], [topic_id], [difficulty], features, [recent or []])
        p_correct, seconds = float(p[0]), float(s[0])
        if not (math.isfinite(p_correct) and math.isfinite(seconds)):
            raise ValueError("predictor produced a non-finite output")
        return p_correct, seconds
