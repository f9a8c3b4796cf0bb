"""The INT8-vs-FP32 agreement measures and gate (model_export/agreement.py)."""

from __future__ import annotations

import numpy as np
import pytest

from model_export.agreement import THRESHOLDS, gate, measure


def test_identical_embeddings_agree_perfectly() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 384)).astype(np.float32)
    values = measure(x, x.copy(), "embedding")
    assert values["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert gate("embedding", values) == []


def test_one_bad_embedding_fails_the_min_cosine_gate() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 384))
    y = x + rng.normal(scale=0.01, size=x.shape)
    y[3] = rng.normal(size=384)  # one row unrelated
    values = measure(x, y, "embedding")
    assert values["mean_cosine"] < 1.0 and values["min_cosine"] < 0.5
    failures = gate("embedding", values)
    assert any(f.startswith("min_cosine") for f in failures)


def test_logits_agreement_counts_argmax_flips() -> None:
    ref = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.9, 0.0]])
    cand = ref.copy()
    cand[3] = [0.9, 1.0, 0.0]  # a near tie flips
    values = measure(ref, cand, "logits")
    assert values["argmax_agreement"] == pytest.approx(0.75)
    assert 0 < values["max_prob_diff"] < 0.05
    assert any(f.startswith("argmax_agreement") for f in gate("logits", values))


def test_single_logit_agreement_uses_probabilities() -> None:
    ref = np.array([[-2.0], [0.5], [3.0]])
    values = measure(ref, ref + 0.01, "logit")
    assert values["decision_agreement"] == 1.0 and values["max_prob_diff"] < 0.01
    assert gate("logit", values) == []
    values = measure(ref, -ref, "logit")
    assert gate("logit", values)


def test_every_kind_has_thresholds() -> None:
    assert set(THRESHOLDS) == {"embedding", "logits", "logit"}
    with pytest.raises(ValueError):
        measure(np.zeros((1, 2)), np.zeros((1, 2)), "regression")
