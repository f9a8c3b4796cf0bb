"""Confusion training: the bootstrap set, the GRU, its ONNX export and the serving class.

Runs in .venv-train (torch). To stay fast the network here learns from stand-in message
vectors (a fixed random unit vector per distinct text) instead of MiniLM embeddings.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from model_export.confusion_data import (
    LABEL_NOISE,
    SCENARIOS,
    TOPICS,
    build,
    simulate,
    template_split,
    topic_split,
)
from model_export.train_confusion import to_arrays
from model_export.training import roc_auc


def _vectors(texts: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for text in set(texts):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
        out[text] = v / np.linalg.norm(v)
    return out


def test_topic_splits_are_disjoint_and_cover_every_topic() -> None:
    split = topic_split(42)
    parts = [set(v) for v in split.values()]
    assert sum(map(len, parts)) == len(TOPICS) == len(set().union(*parts))
    assert min(len(split["val"]), len(split["test"])) >= 2


def test_bootstrap_set_is_reproducible_and_mixed() -> None:
    sizes = {"train": 600, "val": 100, "test": 300}
    a, b = build(5, sizes), build(5, sizes)
    assert a == b
    assert build(6, sizes)["train"] != a["train"]
    rows = a["train"]
    assert {c.scenario for c in rows} == set(SCENARIOS)
    assert 0.3 < sum(c.label for c in rows) / len(rows) < 0.7
    assert all(1 <= len(c.messages) <= 3 for c in rows)
    flipped = sum(c.label != SCENARIOS[c.scenario][0] for c in rows) / len(rows)
    assert 0 < flipped < 3 * LABEL_NOISE


def test_test_conversations_never_mention_a_training_topic() -> None:
    split = topic_split(42)
    data = build(42, {"train": 10, "val": 10, "test": 400})
    pattern = re.compile("|".join(re.escape(t) for t in split["train"]))
    mentioned = [m.text for c in data["test"] for m in c.messages if pattern.search(m.text)]
    assert not mentioned


def test_roc_auc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200).astype(np.float32)
    p = np.round(rng.random(200) + 0.3 * y, 1)  # rounding makes ties
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(y, p) == pytest.approx(pairs)
    assert roc_auc(np.array([0, 0, 1, 1.0]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    from model_export.train_confusion import ConfusionConfig, export_onnx, fit

    data = build(11, {"train": 3000, "val": 300, "test": 400})
    vectors = _vectors([m.text for part in data.values() for c in part for m in c.messages])
    arrays = {k: to_arrays(v, vectors) for k, v in data.items()}
    model, history = fit(arrays["train"], arrays["val"], ConfusionConfig(epochs=12, seed=11))
    path = export_onnx(model, tmp_path_factory.mktemp("confusion") / "confusion.onnx")
    return model, history, data, arrays, vectors, path


def test_gru_learns_the_bootstrap_cues(trained) -> None:
    from model_export.train_confusion import evaluate

    model, history, _, _, _, _ = trained
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # Fresh conversations from the training topics and phrasings: the stand-in vectors
    # carry no meaning, so unseen phrasings could not be recognised; real embeddings do.
    fresh = simulate(400, topic_split(11)["train"], 99, template_split(11, "train"))
    vectors = _vectors([m.text for c in fresh for m in c.messages])
    metrics = evaluate(model, fresh, to_arrays(fresh, vectors), 0.5)
    assert metrics["auc"] > 0.8, metrics
    assert metrics["accuracy_by_scenario"]["explicit_confusion"] > 0.8


def test_served_onnx_matches_torch_for_every_window_length(trained) -> None:
    import torch

    from shared.models.confusion import ConfusionModel, MessageTiming, build_inputs

    model, _, data, _, vectors, path = trained
    served = ConfusionModel(Path(path).parent, {"file": "confusion.onnx"})
    model.eval()
    for conv in data["test"][:40]:
        for n in range(1, len(conv.messages) + 1):
            msgs = conv.messages[-n:]
            emb = np.stack([vectors[m.text] for m in msgs])
            timing = [MessageTiming(m.seconds_since_previous, len(m.text)) for m in msgs]
            e, f = build_inputs(emb, timing)
            with torch.no_grad():
                expected = torch.sigmoid(model(torch.from_numpy(e), torch.from_numpy(f))).item()
            assert served.predict(emb, timing) == pytest.approx(expected, abs=1e-5)
