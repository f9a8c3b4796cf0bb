"""Grader training: the SemEval split, a tiny fit exported, quantized and served, and the
build skipping the grader when the data set is absent.

Runs in .venv-train (torch). The tiny fit (48 pairs, 1 epoch) checks the machinery, not
accuracy; accuracy is in the manifest and in benchmarks/bench_grader_semeval.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model_export.grader_data import (
    LABELS,
    GraderDataMissing,
    classification_metrics,
    load_answers,
    sciEntsBank_dir,
    split_by_question,
)


def test_split_holds_out_whole_questions_reproducibly(shared_data: Path) -> None:
    answers = load_answers(sciEntsBank_dir(shared_data))
    assert len(answers) > 4000 and {a.label for a in answers} == set(LABELS)
    a, b = split_by_question(answers, seed=7), split_by_question(answers, seed=7)
    assert a == b and split_by_question(answers, seed=8).test != a.test
    q = {
        name: {x.question_id for x in part}
        for name, part in (("train", a.train), ("unseen", a.unseen_answers), ("val", a.val), ("test", a.test))
    }
    assert not q["val"] & q["test"] and not (q["val"] | q["test"]) & (q["train"] | q["unseen"])
    assert q["unseen"] <= q["train"]  # unseen answers, seen questions
    assert len(a.train) + len(a.unseen_answers) + len(a.val) + len(a.test) == len(answers)


def test_classification_metrics_match_hand_computation() -> None:
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 2, 1, 2, 2, 0])
    m = classification_metrics(y, pred)
    f1 = {"correct": 2 * 1 / (2 + 1 + 1), "contradictory": 1.0, "incorrect": 2 * 2 / (4 + 1 + 1)}
    assert m["accuracy"] == round(4 / 6, 4)
    assert m["macro_f1"] == round(sum(f1.values()) / 3, 4)
    assert m["weighted_f1"] == round((2 * f1["correct"] + f1["contradictory"] + 3 * f1["incorrect"]) / 6, 4)


def test_missing_data_is_a_skippable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model_export.train_grader import train

    monkeypatch.setenv("SHARED_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(GraderDataMissing) as info:
        train(tmp_path / "work")
    assert info.value.skip_model is True


def test_tiny_fit_exports_quantizes_and_serves(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model_export.base_model import minilm_dir
    from model_export.quantize import quantize_best
    from model_export.train_grader import GraderConfig, train
    from model_export.training import load_training_tokenizer, tokenize
    from shared.models.grader import GraderModel

    monkeypatch.setenv("SHARED_DATA_DIR", str(shared_data))
    trained = train(tmp_path / "work", config=GraderConfig(epochs=1, max_train=48, max_eval=40, batch_size=8))
    assert (trained.name, trained.output_kind) == ("grader", "logits")
    assert {p.name for p in trained.extra_files} == {"grader_labels.json", "tokenizer.json"}
    assert trained.metrics["test_unseen_questions"]["n"] == 40
    assert trained.data["split"]["test_questions"] == 14 and trained.data["trained_on"] == 48
    assert "10 * P(correct)" in trained.extra["score_mapping"]["model"]

    int8, agreement, _ = quantize_best(trained, tmp_path / "int8")
    assert agreement.rows == 40  # the check feeds are the (capped) held-out test answers
    version = tmp_path / "version"
    version.mkdir()
    shutil.copyfile(int8, version / "grader.onnx")
    for extra in trained.extra_files:
        shutil.copyfile(extra, version / extra.name)
    model = GraderModel(version, {"file": "grader.onnx"})
    pairs = [
        ("The water was evaporated, leaving the salt.", "The water evaporated."),
        ("Plants need light.", "I don't know"),
    ]
    probs = model.probabilities(pairs)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert set(model.predict(*pairs[0])) == set(LABELS)

    # serving tokenizes a pair exactly as training did
    served = model.tokenizer.encode_batch(pairs)
    trained_feeds = tokenize(load_training_tokenizer(), pairs)
    assert [e.ids for e in served] == [
        list(row[: len(e.ids)]) for row, e in zip(trained_feeds["input_ids"], served, strict=True)
    ]
    assert max(e.type_ids[-2] for e in served) == 1  # the answer is segment B
    assert (minilm_dir() / "tokenizer.json").read_bytes() == (version / "tokenizer.json").read_bytes()


def test_build_without_the_data_set_publishes_the_version_without_the_grader(
    monkeypatch: pytest.MonkeyPatch, encoder_builder, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import model_export.build as build_module
    from model_export import quantize
    from shared.artifacts.store import LocalStore
    from shared.artifacts.versions import read_manifest

    monkeypatch.setenv("SHARED_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setattr(
        build_module, "BUILDERS", {"encoder": encoder_builder, "grader": "model_export.train_grader:train"}
    )
    monkeypatch.setattr(quantize, "RECIPES", {"fused_per_channel": (True, True)})
    store = LocalStore(tmp_path / "store")
    result = build_module.build(store=store, work_root=tmp_path / "work")
    assert set(read_manifest(store, result.version)["models"]) == {"encoder"}
    assert "skipped grader" in capsys.readouterr().out
