"""The served confusion detector (INT8 ONNX, no torch): inputs, padding and behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.models.confusion import (
    EMBEDDING_DIM,
    WINDOW,
    ConfusionModel,
    MessageTiming,
    build_inputs,
    timing_features,
)
from tests.needs import missing


def test_timing_features_are_bounded_and_monotonic() -> None:
    assert timing_features(MessageTiming(None, 0)) == [1.0, 0.0, 0.0]
    present, gap, length = timing_features(MessageTiming(3600, 2000))
    assert (present, gap, length) == (1.0, pytest.approx(1.0), pytest.approx(1.0))
    assert timing_features(MessageTiming(10**6, 10**6)) == timing_features(MessageTiming(3600, 2000))
    assert timing_features(MessageTiming(-5, -1))[1:] == [0.0, 0.0]
    gaps = [timing_features(MessageTiming(s, 20))[1] for s in (1, 10, 100, 1000)]
    assert gaps == sorted(gaps) and len(set(gaps)) == 4
    assert timing_features(MessageTiming(60, 20))[1] == pytest.approx(math.log1p(60) / math.log1p(3600))


def test_short_histories_are_left_padded_newest_last() -> None:
    e1, e2 = np.full(EMBEDDING_DIM, 0.1), np.full(EMBEDDING_DIM, 0.2)
    emb, feats = build_inputs(np.stack([e1, e2]), [MessageTiming(None, 10), MessageTiming(5, 3)])
    assert emb.shape == (1, WINDOW, EMBEDDING_DIM) and emb.dtype == np.float32
    assert feats.shape == (1, WINDOW, 3)
    assert not emb[0, 0].any() and not feats[0, 0].any()  # padding slot
    np.testing.assert_allclose(emb[0, 1], e1, rtol=1e-6)
    np.testing.assert_allclose(emb[0, 2], e2, rtol=1e-6)
    assert feats[0, 1, 0] == feats[0, 2, 0] == 1.0


def test_longer_histories_keep_the_newest_three() -> None:
    emb = np.arange(5 * EMBEDDING_DIM, dtype=np.float32).reshape(5, EMBEDDING_DIM)
    out, _ = build_inputs(emb, np.ones((5, 3), dtype=np.float32))
    np.testing.assert_array_equal(out[0], emb[2:])


def test_mismatched_timing_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 embeddings but 1 timing"):
        build_inputs(np.zeros((2, EMBEDDING_DIM)), [MessageTiming(None, 3)])


@pytest.fixture(scope="module")
def confusion(published) -> ConfusionModel:
    if "confusion" not in published.manifest["models"]:
        missing(f"version {published.version} has no confusion model")
    return ConfusionModel(published.path, published.manifest["models"]["confusion"])


def _p(confusion: ConfusionModel, encoder, turns: list[tuple[str, float | None]]) -> float:
    emb = encoder.embed([text for text, _ in turns])
    return confusion.predict(emb, [MessageTiming(gap, len(text)) for text, gap in turns])


def test_explicit_confusion_scores_above_understanding(confusion, encoder) -> None:
    question = ("could you walk me through how a hash table resolves collisions", None)
    lost = _p(confusion, encoder, [question, ("sorry, I have no idea what you just said", 140.0)])
    fine = _p(confusion, encoder, [question, ("that makes total sense now, thank you", 30.0)])
    assert 0.0 <= fine < 0.5 < lost <= 1.0


def test_every_window_length_gives_a_probability(confusion, encoder) -> None:
    turns = [("what is a closure", None), ("wait what?", 6.0), ("ok I get it now", 40.0)]
    for n in range(1, 4):
        p = _p(confusion, encoder, turns[:n])
        assert 0.0 <= p <= 1.0
    assert confusion.predict(np.zeros((0, EMBEDDING_DIM)), []) == 0.0
