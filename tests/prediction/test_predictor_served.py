"""The published predictor (INT8 ONNX) served through the registry, end to end.

Skips unless the version in service (MODEL_STORE_URI, by default .state/models, where
`make models` publishes) contains a predictor, i.e. it was built with ../shared/data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.prediction.features import HistoryFeatures, RunningHistory, encode
from tests.needs import missing


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from shared.artifacts.store import open_store
    from shared.artifacts.versions import read_current, read_manifest
    from shared.config import get_settings
    from shared.models.registry import MODEL_CLASSES, ModelRegistry

    store = open_store(get_settings().model_store)
    pointer = read_current(store)
    if pointer is None or "predictor" not in read_manifest(store, pointer.version).get("models", {}):
        missing(f"no published version with a predictor in {store.uri} (build with ../shared/data)")
    classes = {**MODEL_CLASSES, "predictor": "shared.models.predictor:PredictorModel"}
    registry = ModelRegistry(store, cache_dir=Path(tmp_path_factory.mktemp("cache")), ttl_s=3600, classes=classes)
    registry.refresh()
    return registry.get("predictor"), registry


def test_a_new_user_on_a_new_topic_gets_a_sensible_answer(served: Any) -> None:
    model, _ = served
    assert model.known("brand-new-student", "py-loops") == {"user": False, "topic": False}
    p, seconds = model.predict("brand-new-student", "py-loops", 3, encode(HistoryFeatures()))
    assert 0.3 < p < 0.95  # near the population rate, not an extreme
    assert 5 < seconds < 600


def test_history_and_difficulty_move_the_answer_the_right_way(served: Any) -> None:
    model, _ = served
    good, bad = RunningHistory(), RunningHistory()
    for _ in range(10):
        good.add("py-loops", 3, 1.0, 20.0)
        bad.add("py-loops", 3, 0.0, 120.0)
    p_good, s_good = model.predict(
        "u", "py-loops", 3, encode(good.features("py-loops", 3)), recent=good.recent_attempts()
    )
    p_bad, s_bad = model.predict("u", "py-loops", 3, encode(bad.features("py-loops", 3)), recent=bad.recent_attempts())
    assert p_good > p_bad + 0.2 and s_good < s_bad
    ps, _ = model.predict_batch(["u"] * 5, ["py-loops"] * 5, [1, 2, 3, 4, 5], np.stack([encode(HistoryFeatures())] * 5))
    assert ps[0] > ps[4]


def test_the_manifest_says_what_the_time_head_learned(served: Any) -> None:
    model, _ = served
    assert "simulated" in model.time_head_trained_on


def test_the_http_function_answers_with_the_published_network(
    served: Any, client: Any, bearer: Any, course: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.models.registry as registry_module

    _, registry = served
    monkeypatch.setattr(registry_module, "get_registry", lambda: registry)
    res = client.post("/api/prediction", json={"topic_id": "py-loops", "difficulty": 3}, headers=bearer("alice"))
    assert res.status_code == 200, res.json
    body = res.json
    # v1 knows no product ids: its learned 'unknown' rows answer, and it says so
    assert (body["model"], body["model_version"]) == ("network", registry.version)
    assert body["unknown"] == ["user", "topic"]
    done = client.post(
        "/api/prediction/complete",
        headers=bearer("alice"),
        json={"attempt_id": body["attempt_id"], "correct": True, "time_seconds": 12.5},
    )
    assert done.status_code == 200 and done.json["predictor"] == "network"
