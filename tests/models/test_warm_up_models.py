"""The models' warm-up run (shared/warm_up.py's models lane) on the published models:
each text model runs its warm-up batch through its session once; the others have none."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared import warm_up


def test_the_models_lane_loads_the_registry_and_runs_each_text_model_once(
    published_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: dict[str, list[int]] = {}
    for name, model in published_registry.loaded.models.items():
        run = model.session.run

        def spy(feeds: dict[str, np.ndarray], name: str = name, run: Any = run) -> list[np.ndarray]:
            batches.setdefault(name, []).append(len(feeds["input_ids"]))
            return run(feeds)

        monkeypatch.setattr(model.session, "run", spy)
    monkeypatch.setattr("shared.models.registry.get_registry", lambda: published_registry)

    warm_up._load_models()

    text_models = {"encoder", "intent", "grader", "encoder_intent"} & set(published_registry.loaded.models)
    # the intent model is loaded only in a version without the encoder's intent head
    one_pass = "encoder_intent" in published_registry.loaded.manifest["models"]
    assert text_models == {"encoder", "grader", "encoder_intent" if one_pass else "intent"}
    assert batches == {name: [1] for name in text_models}
