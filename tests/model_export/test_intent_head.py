"""The intent head merged into the encoder's graph (model_export/intent_head.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_export import intent_head
from model_export.intent_data import Split

QUIZ = ["quiz me on loops", "give me practice questions on sql", "test me on recursion", "a quiz about graphs please"]
ERROR = ["my code throws an error", "why does this crash with a TypeError", "I get a segfault", "the build fails"]


@pytest.fixture(scope="module")
def version_dir(exported_encoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version folder holding the exported encoder as `encoder.onnx`, with its config
    and tokenizer (FP32 here: the graph surgery is the same as on the INT8 file)."""
    import shutil

    folder = tmp_path_factory.mktemp("version")
    shutil.copyfile(exported_encoder.fp32_onnx, folder / "encoder.onnx")
    for extra in exported_encoder.extra_files:
        shutil.copyfile(extra, folder / Path(extra).name)
    return folder


def test_the_merged_graph_keeps_the_embedding_and_answers_as_the_trained_head(version_dir: Path, tmp_path: Path):
    split = Split(
        train=[(t, "practice_quiz") for t in QUIZ[:3]] + [(t, "debugging") for t in ERROR[:3]],
        val=[(QUIZ[3], "practice_quiz"), (ERROR[3], "debugging")],
        test=[(QUIZ[3], "practice_quiz"), (ERROR[3], "debugging")],
    )
    reference = {"golden": {"accuracy": 0.0}, "test": {"accuracy": 0.5}}
    config = intent_head.HeadConfig(hidden=32, epochs=30)
    entry = intent_head.build(
        version_dir, tmp_path, split, ["practice_quiz", "debugging"], [(QUIZ[0], "practice_quiz")], reference, config
    )
    assert entry is not None and "skipped" not in entry, entry
    # build() raises unless the embedding is the encoder's bit for bit and the logits the head's
    assert entry["merged_check"]["embedding"] == "bit for bit the encoder's"
    assert entry["merged_check"]["texts"] == 8
    assert entry["metrics"]["test"]["accuracy"] == 1.0  # two clear phrasings of two intents

    import onnxruntime as ort

    session = ort.InferenceSession(str(version_dir / entry["file"]), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["sentence_embedding", "logits"]
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]


def test_a_head_that_reads_the_golden_set_worse_is_kept_out(version_dir: Path, tmp_path: Path):
    split = Split(train=[(QUIZ[0], "practice_quiz"), (ERROR[0], "debugging")], val=[], test=[])
    # the golden queries carry the opposite labels: the head cannot match a perfect reference
    golden = [(QUIZ[1], "debugging"), (ERROR[1], "practice_quiz")]
    reference = {"golden": {"accuracy": 1.0}, "test": {"accuracy": 1.0}}
    entry = intent_head.build(
        version_dir,
        tmp_path,
        split,
        ["practice_quiz", "debugging"],
        golden,
        reference,
        intent_head.HeadConfig(hidden=32, epochs=30),
    )
    assert entry is not None and "golden accuracy" in entry["skipped"]
    assert "file" not in entry  # nothing merged, nothing for the version to serve


@pytest.mark.parametrize(
    ("metrics", "reference", "ok"),
    [
        (
            {"golden": {"accuracy": 1.0}, "test": {"accuracy": 0.92}},
            {"golden": {"accuracy": 1.0}, "test": {"accuracy": 0.94}},
            True,
        ),
        (
            {"golden": {"accuracy": 0.98}, "test": {"accuracy": 0.99}},
            {"golden": {"accuracy": 1.0}, "test": {"accuracy": 0.94}},
            False,
        ),
        (
            {"golden": {"accuracy": 1.0}, "test": {"accuracy": 0.90}},
            {"golden": {"accuracy": 1.0}, "test": {"accuracy": 0.94}},
            False,
        ),
        ({"golden": {"accuracy": 1.0}, "test": {"accuracy": 1.0}}, None, False),
    ],
)
def test_the_gate_holds_the_head_to_the_fine_tuned_model(metrics: dict, reference: dict | None, ok: bool):
    assert intent_head.passes_gate(metrics, reference)[0] is ok


def test_states_exposed_are_the_ones_the_head_reads(version_dir: Path, tmp_path: Path):
    exposed = intent_head.expose_states(version_dir / "encoder.onnx", tmp_path / "exposed.onnx")
    from shared.models.onnx_model import load_tokenizer

    tokenizer = load_tokenizer(version_dir / "tokenizer.json", max_length=256)
    reader = intent_head.StateReader(exposed, tokenizer, threads=1)
    vector, states = reader.read("how do loops work?")
    assert vector.shape == (384,) and states.shape[0] == intent_head.LAYERS and states.shape[2] == intent_head.DIM
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)


def test_a_build_attaches_a_fresh_head_and_drops_a_stale_one(version_dir: Path, tmp_path: Path):
    """`attach_intent_head` (the build and the retraining job): the head is trained for
    this build's intent model; a parent's head never stays beside a new intent model."""
    from model_export import build as build_module

    split = Split(
        train=[(t, "practice_quiz") for t in QUIZ[:3]] + [(t, "debugging_help") for t in ERROR[:3]],
        val=[(QUIZ[3], "practice_quiz"), (ERROR[3], "debugging_help")],
        test=[(QUIZ[3], "practice_quiz"), (ERROR[3], "debugging_help")],
    )
    stale = {"file": "encoder_intent.onnx", "metrics": {"from": "the parent"}}
    lenient = {"golden": {"accuracy": 0.0}, "test": {"accuracy": 0.5}}
    entries = {"encoder": {}, "intent": {"metrics": lenient}, "encoder_intent": stale}
    record = build_module.attach_intent_head(version_dir, entries, tmp_path / "a", split=split)
    assert record["served"] and entries["encoder_intent"] is not stale
    assert entries["encoder_intent"]["metrics"]["test"]["n"] == 2

    strict = {"golden": {"accuracy": 1.0}, "test": {"accuracy": 1.0}}
    entries = {"encoder": {}, "intent": {"metrics": strict}, "encoder_intent": stale}
    record = build_module.attach_intent_head(version_dir, entries, tmp_path / "b", split=split)
    assert "golden accuracy" in record["skipped"] and "encoder_intent" not in entries
