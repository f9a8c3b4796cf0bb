"""Grader training: the SemEval split, a tiny fit exported, quantized and served, and the
build skipping the grader when the data set is absent.

Runs in .venv-train (torch). The tiny fit (48 pairs, 1 epoch) checks the machinery, not
accuracy; accuracy is in the manifest and in benchmarks/bench_grader_semeval.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_export.grader_data import (
    HELD_OUT_DOMAINS,
    LABELS,
    GraderDataMissing,
    classification_metrics,
    grader_split,
    load_answers,
    load_beetle,
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


def test_both_corpora_parse_with_corpus_domain_and_matched_reference(shared_data: Path) -> None:
    sci = load_answers(sciEntsBank_dir(shared_data))
    beetle = load_beetle(shared_data)
    assert len(beetle) == 3941 and {a.corpus for a in beetle} == {"beetle"} and {a.label for a in beetle} == set(LABELS)
    assert {a.corpus for a in sci} == {"sciEntsBank"}
    assert {a.domain for a in sci} == {"EM", "FN", "II", "LF", "LP", "ME", "MS", "MX", "PS", "SE", "ST", "VB"}
    assert all(a.question_id.startswith(a.domain) for a in sci)  # EM_45b is in EM
    assert all(len(a.references) == 1 and a.reference == a.references[0] for a in sci)
    # Beetle: several references; answerMatch picks the one the answer is paired with
    assert len({a.question_id for a in beetle}) == 47 and max(len(a.references) for a in beetle) > 1
    matched = next(a for a in beetle if a.answer == "terminal 1 is connected to terminal 2")
    assert matched.reference == "Terminals 1 and 2 are connected" and matched.match == 0
    other = next(a for a in beetle if a.answer == "terminal 1 and 2 have the same difference in electrical states")
    assert other.reference == "Terminals 1 and 2 are connected and in the same electrical state"
    assert other.label == "contradictory" and other.match == 3
    assert sum(a.match > 0 for a in beetle) > 1000  # not just the first reference


def test_domain_split_holds_out_whole_domains_and_keeps_the_question_split(shared_data: Path) -> None:
    sci = load_answers(sciEntsBank_dir(shared_data))
    beetle = load_beetle(shared_data)
    old, new = split_by_question(sci, seed=42), grader_split(sci, beetle, seed=42)
    assert new == grader_split(sci, beetle, seed=42)
    assert HELD_OUT_DOMAINS == ("FN", "LF", "VB")
    # unseen questions: exactly the sets every earlier measurement used
    assert new.val == old.val and new.test == old.test
    held = set(HELD_OUT_DOMAINS)
    assert new.unseen_domains == [a for a in sci if a.domain in held] and len(new.unseen_domains) == 1112
    assert not any(a.domain in held for a in new.train + new.unseen_answers)
    assert set(new.unseen_answers) <= set(old.unseen_answers)
    assert [a for a in new.train if a.corpus == "beetle"] == beetle  # Beetle trains, all of it
    sci_train = [a for a in new.train if a.corpus == "sciEntsBank"]
    assert sci_train == [a for a in old.train if a.domain not in held]
    q_train = {a.question_id for a in new.train}
    assert not q_train & {a.question_id for a in new.val + new.test + new.unseen_domains}
    assert new.sizes()["unseen_domains_questions"] == 31


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
    from model_export.grader_data import Answer
    from model_export.quantize import quantize_best
    from model_export.train_grader import GraderConfig, train
    from model_export.train_grader import pairs as train_pairs
    from model_export.training import load_training_tokenizer, tokenize
    from shared.models.grader import GraderModel, grader_input

    monkeypatch.setenv("SHARED_DATA_DIR", str(shared_data))
    config = GraderConfig(epochs=1, max_train=48, max_eval=40, batch_size=8)
    assert config.input_format == GraderConfig().input_format  # the tiny fit serves the default format
    trained = train(tmp_path / "work", config=config)
    assert (trained.name, trained.output_kind) == ("grader", "logits")
    assert {p.name for p in trained.extra_files} == {"grader_labels.json", "tokenizer.json"}
    assert trained.metrics["test_unseen_questions"]["n"] == 40
    assert trained.metrics["test_unseen_domains"]["n"] == 40
    assert trained.data["split"]["test_questions"] == 14 and trained.data["trained_on"] >= 48
    assert trained.data["split"]["held_out_domains"] == ["FN", "LF", "VB"]
    assert trained.data["split"]["train_beetle"] == 3941
    assert "10 * P(correct)" in trained.extra["score_mapping"]["model"]

    int8, agreement, _ = quantize_best(trained, tmp_path / "int8")
    assert agreement.rows == 40  # the check feeds are the (capped) held-out test answers
    version = tmp_path / "version"
    version.mkdir()
    shutil.copyfile(int8, version / "grader.onnx")
    for extra in trained.extra_files:
        shutil.copyfile(extra, version / extra.name)
    model = GraderModel(version, {"file": "grader.onnx"})
    labels = json.loads((version / "grader_labels.json").read_text())
    assert labels["input_format"] == config.input_format == model.input_format
    question = "How did you separate the salt from the water?"
    triples = [
        (question, "The water was evaporated, leaving the salt.", "The water evaporated."),
        ("Why do plants need light?", "Plants need light.", "I don't know"),
    ]
    pairs = [model.pair(*t) for t in triples]
    # serving's pair is the trainer's: the same builder over the same fields of an Answer
    assert pairs == [grader_input(config.input_format, *t) for t in triples]
    answer = Answer("q", question, (triples[0][1],), triples[0][2], "correct")
    assert train_pairs([answer], config.input_format) == pairs[:1]
    probs = model.probabilities(pairs)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert set(model.predict(triples[0][1], triples[0][2], question)) == set(LABELS)

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
    monkeypatch.setattr(quantize, "RECIPES", {"fused_per_channel": quantize.RECIPES["fused_per_channel"]})
    store = LocalStore(tmp_path / "store")
    result = build_module.build(store=store, work_root=tmp_path / "work")
    assert set(read_manifest(store, result.version)["models"]) == {"encoder"}
    assert "skipped grader" in capsys.readouterr().out


def test_reference_augmentation_pairs_references_and_negates_them() -> None:
    from model_export.grader_data import Answer
    from model_export.train_grader import negate, reference_pairs

    assert negate("Terminals 1 and 2 are connected") == "Terminals 1 and 2 are not connected"
    assert negate("The switch is not closed") == "The switch is closed"
    assert negate("Light bulbs") is None
    refs = ("Terminals 1 and 2 are connected", "There is no gap between them")
    a = Answer("q", "Why 0 V?", refs, "they are connected", "correct", "beetle", "FaultFinding", 0)
    made = reference_pairs([a, a])  # one question: made once
    assert {(x.reference, x.answer, x.label) for x in made} == {
        (refs[0], refs[1], "correct"),
        (refs[1], refs[0], "correct"),
        (refs[0], "Terminals 1 and 2 are not connected", "contradictory"),
        (refs[1], "There is not no gap between them", "contradictory"),
    }
