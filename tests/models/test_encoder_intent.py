"""The encoder with the intent head grafted on (INT8 ONNX, no torch): one pass, the
encoder's vector bit for bit and the intent of every golden query."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.models.encoder import EncoderModel
from shared.models.encoder_intent import EncoderIntentModel
from tests.needs import missing

GOLDEN = Path(__file__).resolve().parent.parent / "golden_queries.json"


@pytest.fixture(scope="module")
def one_pass(published) -> EncoderIntentModel:
    entry = published.manifest["models"].get("encoder_intent")
    if entry is None:
        why = published.manifest.get("build", {}).get("intent_head", {}).get("skipped", "built before the head")
        missing(f"version {published.version} has no encoder_intent ({why})")
    return EncoderIntentModel(published.path, entry)


@pytest.fixture(scope="module")
def golden() -> list[dict]:
    return json.loads(GOLDEN.read_text())["queries"]


def test_the_vector_is_the_encoders_bit_for_bit(one_pass, published, golden) -> None:
    encoder = EncoderModel(published.path, published.manifest["models"]["encoder"])
    for query in [q["query"] for q in golden] + ["", "x" * 3000]:
        vector, _ = one_pass.read(query)
        assert np.array_equal(vector, encoder.embed([query])[0]), query


def test_every_golden_query_gets_its_intent(one_pass, golden) -> None:
    wrong = [(q["query"], one_pass.read(q["query"])[1].label, q["intent"]) for q in golden]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert wrong == [], wrong


def test_the_labels_and_the_build_record_describe_the_head(one_pass, published) -> None:
    intent_labels = json.loads((published.path / "intent_labels.json").read_text())["labels"]
    assert one_pass.labels == intent_labels
    assert 0.05 <= one_pass.temperature <= 20
    entry = published.manifest["models"]["encoder_intent"]
    assert entry["merged_check"]["embedding"] == "bit for bit the encoder's"
    assert entry["metrics"]["golden"]["accuracy"] == 1.0
    _, prediction = one_pass.read("how do loops work?")
    assert sum(prediction.probs.values()) == pytest.approx(1.0) and prediction.label in intent_labels
