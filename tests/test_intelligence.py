"""The golden set: every one of the 50 queries in tests/golden_queries.json must get its
mandatory intent from the published INT8 intent model, loaded the way serving loads it
(the registry over the configured artifact store, checksums verified).

The golden queries are written apart from the training data (model_export/data/) and are
never trained on; the retraining gate refuses a model that gets any of them wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.chat.fallbacks import INTENTS
from tests.needs import missing

GOLDEN = Path(__file__).resolve().parent / "golden_queries.json"
QUERIES: list[dict] = json.loads(GOLDEN.read_text(encoding="utf-8"))["queries"]


@pytest.fixture(scope="module")
def intent_model(tmp_path_factory: pytest.TempPathFactory):
    from shared.artifacts.store import open_store
    from shared.artifacts.versions import read_current
    from shared.config import get_settings
    from shared.models.registry import MODEL_CLASSES, ModelRegistry

    store = open_store(get_settings().model_store)
    if read_current(store) is None:
        missing(
            f"no model version is published in {store.uri}: run "
            "`.venv-train/bin/python -m model_export build` (make models) first"
        )
    # the intent model itself, as a version without the encoder's intent head serves it
    # (tests/models/test_encoder_intent.py reads the golden set with the head)
    classes = {name: spec for name, spec in MODEL_CLASSES.items() if name != "encoder_intent"}
    registry = ModelRegistry(store, cache_dir=tmp_path_factory.mktemp("golden-cache"), ttl_s=3600, classes=classes)
    registry.refresh()
    return registry.get("intent")


def test_golden_set_is_well_formed() -> None:
    from shared.models.intent import DEFAULT_THRESHOLDS  # noqa: F401 - serving import works

    assert len(QUERIES) == 50
    assert len({q["query"].lower() for q in QUERIES}) == 50
    intents = {q["intent"] for q in QUERIES}
    assert set(INTENTS) <= intents  # the taxonomy the chat pipeline routes on


@pytest.mark.parametrize("item", QUERIES, ids=[q["query"][:40] for q in QUERIES])
def test_golden_query(intent_model, item: dict) -> None:
    prediction = intent_model.predict([item["query"]])[0]
    assert prediction.label == item["intent"], (
        f"{item['query']!r}: expected {item['intent']}, got {prediction.label} ({prediction.confidence:.2f})"
    )


def test_golden_set_in_one_batch_matches_one_by_one(intent_model) -> None:
    """Padding a batch to its longest query must not change any answer. Dynamic INT8
    quantizes activations with one scale per tensor, so the batch a query is in moves its
    confidence slightly (about 1e-3 here); the label must not move."""
    texts = [q["query"] for q in QUERIES]
    batched = intent_model.predict(texts)
    for text, pred in zip(texts, batched, strict=True):
        single = intent_model.predict([text])[0]
        assert single.label == pred.label
        assert abs(single.confidence - pred.confidence) < 0.05
