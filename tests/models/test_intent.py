"""The served intent model (INT8 ONNX, no torch): calibrated probabilities and thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.models.intent import DEFAULT_THRESHOLDS, IntentModel, IntentPrediction, action_for
from tests.needs import missing


def test_actions_follow_the_product_thresholds() -> None:
    assert DEFAULT_THRESHOLDS == {"rephrase": 0.40, "human_review": 0.60}
    assert action_for(0.10) == "rephrase"
    assert action_for(0.399) == "rephrase"
    assert action_for(0.40) == "human_review"
    assert action_for(0.59) == "human_review"
    assert action_for(0.60) == "act"
    assert action_for(0.5, {"rephrase": 0.2, "human_review": 0.45}) == "act"


@pytest.fixture(scope="module")
def intent(published) -> IntentModel:
    if "intent" not in published.manifest["models"]:
        missing(f"version {published.version} has no intent model")
    return IntentModel(published.path, published.manifest["models"]["intent"])


def test_label_file_and_manifest_describe_the_model(intent, published) -> None:
    meta = json.loads((published.path / "intent_labels.json").read_text())
    assert meta["labels"] == intent.labels
    assert len(set(intent.labels)) == len(intent.labels) >= 7
    assert 0.05 <= intent.temperature <= 20
    entry = published.manifest["models"]["intent"]
    assert entry["metrics"]["test"]["accuracy"] > 0.8
    assert entry["data"]["sha256"]


def test_probabilities_are_the_temperature_scaled_softmax_of_the_logits(intent) -> None:
    texts = ["how does recursion work?", "my loop never stops, why?", "hi there"]
    logits = intent.logits(texts).astype(np.float64)
    z = logits / intent.temperature
    expected = np.exp(z - z.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(intent.probabilities(texts), expected, rtol=1e-6, atol=1e-9)
    for pred, row in zip(intent.predict(texts), expected, strict=True):
        assert isinstance(pred, IntentPrediction)
        assert pred.label == intent.labels[int(row.argmax())]
        assert pred.confidence == pytest.approx(row.max())
        assert sum(pred.probs.values()) == pytest.approx(1.0)
        assert set(pred.probs) == set(intent.labels)


def test_hard_pair_debugging_versus_concept(intent) -> None:
    debug, concept = intent.predict(["I don't get why my loop is broken", "how do loops work?"])
    assert debug.label == "debugging_help"
    assert concept.label == "concept_explanation"


def test_empty_batch(intent) -> None:
    assert intent.predict([]) == []
