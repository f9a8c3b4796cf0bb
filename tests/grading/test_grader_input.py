"""The grader model's input format: the label file says how (question, reference,
answer) becomes the cross-encoder's pair, and serving (GraderModel, ModelGrader) builds
exactly that pair; a label file without the key keeps the first models' format.

No model artifacts needed: a tiny word-level tokenizer and a recording stand-in model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.grading.contract import Question
from shared.grading.offline import ModelGrader
from shared.models.grader import INPUT_FORMATS, LEGACY_INPUT_FORMAT, GraderModel, grader_input

QUESTION = Question(
    "q1",
    "t",
    "short_answer",
    "How did you separate the salt from the water?",
    2,
    references=("The water was evaporated, leaving the salt.", "Evaporate the water."),
)


def test_grader_input_formats() -> None:
    ref, ans, q = QUESTION.references[0], "It evaporated.", QUESTION.prompt
    assert grader_input("reference", q, ref, ans) == (ref, ans)
    assert grader_input("reference_question", q, ref, ans) == (f"{ref} [SEP] {q}", ans)
    assert grader_input("reference_question", "  ", ref, ans) == (ref, ans)  # no question text: no context
    assert LEGACY_INPUT_FORMAT == "reference" and set(INPUT_FORMATS) == {"reference", "reference_question"}
    with pytest.raises(ValueError, match="input_format"):
        grader_input("question_only", q, ref, ans)


def _version(tmp_path: Path, meta: dict) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({"[PAD]": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "grader_labels.json").write_text(json.dumps(meta))
    return tmp_path


def _loaded(folder: Path) -> GraderModel:
    model = GraderModel.__new__(GraderModel)  # side files only: no graph needed here
    model.load(folder)
    return model


LABELS = ["correct", "contradictory", "incorrect"]


def test_label_file_input_format_and_legacy_default(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    legacy = _loaded(_version(tmp_path / "a", {"labels": LABELS}))
    assert legacy.input_format == "reference"
    assert legacy.pair(QUESTION.prompt, "ref", "ans") == ("ref", "ans")

    (tmp_path / "b").mkdir()
    new = _loaded(_version(tmp_path / "b", {"labels": LABELS, "input_format": "reference_question"}))
    assert new.pair(QUESTION.prompt, "ref", "ans") == (f"ref [SEP] {QUESTION.prompt}", "ans")

    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="input_format"):
        _loaded(_version(tmp_path / "c", {"labels": LABELS, "input_format": "nope"}))


class _RecordingModel:
    """Stands in for GraderModel: records each batch of pairs it is asked about."""

    labels = LABELS

    def __init__(self, input_format: str) -> None:
        self.input_format = input_format
        self.calls: list[list[tuple[str, str]]] = []

    def pair(self, question: str, reference: str, answer: str) -> tuple[str, str]:
        return grader_input(self.input_format, question, reference, answer)

    def probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        self.calls.append(list(pairs))
        return np.tile([0.6, 0.1, 0.3], (len(pairs), 1))


class _Registry:
    version = "test"

    def __init__(self, model: Any) -> None:
        self.model = model

    def get(self, name: str) -> Any:
        return self.model


class _Embeddings:
    model_name = "test"

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32) / 2.0


@pytest.mark.parametrize("input_format", sorted(INPUT_FORMATS))
def test_model_grader_builds_the_label_files_pair_for_every_reference(input_format: str) -> None:
    model = _RecordingModel(input_format)
    ModelGrader(_Registry(model), _Embeddings()).grade(QUESTION, "The water evaporates and salt stays.")
    expected = [
        [grader_input(input_format, QUESTION.prompt, ref, "The water evaporates and salt stays.")]
        for ref in QUESTION.references
    ]
    assert model.calls == expected  # one pair per call, one call per reference, the training format
