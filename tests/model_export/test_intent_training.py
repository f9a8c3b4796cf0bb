"""Intent training: data set, split, calibration, and a tiny fit exported to ONNX and served.

Runs in .venv-train (torch). The tiny fit uses 3 queries per intent and 2 epochs, so it
checks the machinery (determinism, export, serving parity), not accuracy; accuracy is in
the manifest and in tests/test_intelligence.py against the published model.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_export.calibration import (
    T_MIN,
    expected_calibration_error,
    fit_temperature,
    softmax,
    threshold_report,
)
from model_export.intent_data import INTENT_LABELS, load_examples, stratified_split

REPO = Path(__file__).resolve().parents[2]


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def test_training_set_covers_the_taxonomy_without_duplicates() -> None:
    examples = load_examples()
    assert len(examples) >= 500
    counts = {label: sum(1 for _, lab in examples if lab == label) for label in INTENT_LABELS}
    assert min(counts.values()) >= 60, counts
    texts = [_norm(t) for t, _ in examples]
    assert len(set(texts)) == len(texts)


def test_golden_queries_are_not_in_the_training_set() -> None:
    golden = json.loads((REPO / "tests" / "golden_queries.json").read_text())["queries"]
    train = {_norm(t) for t, _ in load_examples()}
    assert not [q["query"] for q in golden if _norm(q["query"]) in train]
    assert {q["intent"] for q in golden} <= set(INTENT_LABELS)


def test_split_is_stratified_disjoint_and_reproducible() -> None:
    examples = load_examples()
    a, b = stratified_split(examples, seed=7), stratified_split(examples, seed=7)
    assert a == b
    assert stratified_split(examples, seed=8).test != a.test
    parts = [set(a.train), set(a.val), set(a.test)]
    assert sum(map(len, parts)) == len(examples) == len(set().union(*parts))
    for part in (a.val, a.test):
        assert {lab for _, lab in part} == set(INTENT_LABELS)
    no_test = stratified_split(examples, seed=7, test_frac=0.0)
    assert no_test.test == [] and len(no_test.val) == len(a.val)


def test_temperature_fit_recovers_the_true_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(4000, 7))
    true_t = 2.5  # the "model" is over-confident by this factor
    probs = softmax(logits, true_t)
    labels = np.array([rng.choice(7, p=p) for p in probs])
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.1)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, fitted), labels)
    assert after < 0.03 < before


def test_temperature_fit_is_bounded_when_validation_is_perfect() -> None:
    logits = np.eye(5) * 3.0
    assert T_MIN <= fit_temperature(logits, np.arange(5)) < 0.06


def test_threshold_report_counts_coverage_and_accuracy() -> None:
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7], [0.35, 0.65]])
    labels = np.array([0, 1, 1, 0])
    report = threshold_report(probs, labels, (0.40, 0.60))
    assert report["0.40"] == {"coverage": 1.0, "accuracy_above": 0.5}
    assert report["0.60"] == {"coverage": 0.75, "accuracy_above": pytest.approx(2 / 3, abs=1e-4)}


def test_a_shallower_classifier_keeps_the_first_pretrained_layers() -> None:
    """`layers=N` keeps MiniLM's first N transformer layers with their pretrained weights
    (the embeddings too), so a shallower intent model starts from the same reading of the
    text, only cut short; the full depth is the pretrained model unchanged."""
    import torch

    from model_export.train_intent import IntentConfig
    from model_export.training import MiniLMClassifier

    full = MiniLMClassifier(3)
    short = MiniLMClassifier(3, layers=2)
    assert len(full.encoder.encoder.layer) == 6
    assert len(short.encoder.encoder.layer) == 2
    full_state, short_state = full.encoder.state_dict(), short.encoder.state_dict()
    assert set(short_state) < set(full_state)
    for name, tensor in short_state.items():
        assert torch.equal(tensor, full_state[name]), name
    assert len(MiniLMClassifier(3, layers=IntentConfig().layers).encoder.encoder.layer) == IntentConfig().layers
    for impossible in (0, 7):
        with pytest.raises(ValueError, match="pretrained depth"):
            MiniLMClassifier(3, layers=impossible)


def test_frozen_layers_stay_the_pretrained_trunk_even_in_training():
    """`frozen_layers=N` keeps the embeddings and the first N layers as pretrained, with
    no dropout, so in training mode too they compute what the sentence encoder computes
    (the trunk a shared pass would serve); the layers above still learn."""
    import torch

    from model_export.training import MiniLMClassifier, load_training_tokenizer, tokenize

    model = MiniLMClassifier(3, frozen_layers=2)
    layers = model.encoder.encoder.layer
    frozen = [model.encoder.embeddings, *layers[:2]]
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in layers[2:] for p in m.parameters())
    assert all(p.requires_grad for p in model.head.parameters())

    feeds = {k: torch.from_numpy(v) for k, v in tokenize(load_training_tokenizer(), ["what is a for loop"]).items()}
    pretrained = MiniLMClassifier(3).eval()
    with torch.no_grad():
        expected = pretrained.encoder(**feeds, output_hidden_states=True).hidden_states[2]
        model.train()
        torch.manual_seed(0)
        first = model.encoder(**feeds, output_hidden_states=True).hidden_states
        torch.manual_seed(1)
        second = model.encoder(**feeds, output_hidden_states=True).hidden_states
    assert torch.allclose(first[2], expected, atol=1e-5)
    assert torch.equal(first[2], second[2])
    assert not torch.equal(first[3], second[3])  # above the trunk, dropout still trains
    for impossible in (-1, 7):
        with pytest.raises(ValueError, match="frozen_layers"):
            MiniLMClassifier(3, frozen_layers=impossible)


def test_extra_layers_read_the_exact_encoder_and_alone_learn():
    """`frozen_layers=6, extra_layers=1`: the six pretrained layers stay the sentence
    encoder's (the input of the appended layer is what the encoder computes), the appended
    layer starts as a copy of the last one and is the only transformer layer that learns."""
    import torch

    from model_export.training import MiniLMClassifier, load_training_tokenizer, tokenize

    model = MiniLMClassifier(3, frozen_layers=6, extra_layers=1)
    layers = model.encoder.encoder.layer
    assert len(layers) == 7 and model.encoder.config.num_hidden_layers == 7
    assert not any(p.requires_grad for m in layers[:6] for p in m.parameters())
    assert all(p.requires_grad for p in layers[6].parameters())
    for (name, copied), (_, last) in zip(layers[6].state_dict().items(), layers[5].state_dict().items(), strict=True):
        assert torch.equal(copied, last), name

    feeds = {k: torch.from_numpy(v) for k, v in tokenize(load_training_tokenizer(), ["what is a for loop"]).items()}
    pretrained = MiniLMClassifier(3).eval()
    with torch.no_grad():
        expected = pretrained.encoder(**feeds).last_hidden_state
        model.train()
        states = model.encoder(**feeds, output_hidden_states=True).hidden_states
    assert len(states) == 8  # embeddings + 7 layers
    assert torch.allclose(states[6], expected, atol=1e-5)
    assert model(**feeds).shape == (1, 3)
    with pytest.raises(ValueError, match="extra_layers"):
        MiniLMClassifier(3, extra_layers=-1)


@pytest.fixture(scope="module")
def tiny_fit():
    from model_export.train_intent import IntentConfig, fit_intent

    split = stratified_split(load_examples(), seed=1)
    per_label: dict[str, list] = {}
    for text, label in split.train:
        per_label.setdefault(label, [])
        if len(per_label[label]) < 3:
            per_label[label].append((text, label))
    train = [e for rows in per_label.values() for e in rows]
    config = IntentConfig(epochs=2, batch_size=8, seed=3)
    return fit_intent(train, split.val[:14], list(INTENT_LABELS), config), train, config


def test_fit_is_deterministic_for_a_seed(tiny_fit) -> None:
    from model_export.train_intent import fit_intent, load_training_tokenizer, predict_logits

    fit, train, config = tiny_fit
    again = fit_intent(train, [], list(INTENT_LABELS), config)
    tok = load_training_tokenizer()
    texts = ["how do closures work?", "quiz me on SQL"]
    np.testing.assert_array_equal(predict_logits(fit.model, tok, texts), predict_logits(again.model, tok, texts))
    assert [h["train_loss"] for h in fit.history] == [h["train_loss"] for h in again.history]


def test_unit_weights_train_exactly_like_the_unweighted_loss(tiny_fit) -> None:
    """The weighted path (silver labels weigh less) is a weighted mean: with every weight 1
    it is the plain mean, so the same seed trains the same model; a mismatch is refused."""
    from model_export.train_intent import fit_intent, load_training_tokenizer, predict_logits

    fit, train, config = tiny_fit
    weighted = fit_intent(train, [], list(INTENT_LABELS), config, weights=[1.0] * len(train))
    tok = load_training_tokenizer()
    texts = ["how do closures work?", "quiz me on SQL"]
    np.testing.assert_allclose(
        predict_logits(fit.model, tok, texts), predict_logits(weighted.model, tok, texts), atol=1e-5
    )
    halved = fit_intent(
        train, [], list(INTENT_LABELS), config, weights=[1.0, 0.1] * (len(train) // 2) + [1.0] * (len(train) % 2)
    )
    assert [h["train_loss"] for h in halved.history] != [h["train_loss"] for h in fit.history]
    with pytest.raises(ValueError, match="weights"):
        fit_intent(train, [], list(INTENT_LABELS), config, weights=[1.0])


def test_distillation_mixes_the_label_with_the_teachers_softened_reading(tiny_fit) -> None:
    """With a teacher, each target is (1 - w) x one-hot + w x the teacher's probabilities at
    the distillation temperature: a distribution whose arg-max is the label's where the
    teacher agrees; a weight outside (0, 1] is refused, and a shallow student trained
    so differs from one trained on the labels alone."""
    from dataclasses import replace

    from model_export.calibration import softmax
    from model_export.train_intent import _distilled_targets, fit_intent, load_training_tokenizer, predict_logits

    fit, train, config = tiny_fit
    tok = load_training_tokenizer()
    index = {label: i for i, label in enumerate(INTENT_LABELS)}
    taught = replace(config, distill_weight=0.25, distill_temperature=3.0)
    targets = _distilled_targets(fit.model, train, index, taught)
    assert _distilled_targets(None, train, index, taught) is None
    teacher = softmax(predict_logits(fit.model, tok, [t for t, _ in train]), 3.0)
    onehot = np.eye(len(INTENT_LABELS))[[index[lab] for _, lab in train]]
    np.testing.assert_allclose(targets, 0.75 * onehot + 0.25 * teacher, atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="distill_weight"):
        _distilled_targets(fit.model, train, index, replace(config, distill_weight=0.0))
    student = replace(config, layers=2, epochs=1)
    alone = fit_intent(train, [], list(INTENT_LABELS), student)
    distilled = fit_intent(train, [], list(INTENT_LABELS), replace(student, distill_weight=0.5), teacher=fit.model)
    texts = ["how do closures work?", "quiz me on SQL"]
    assert not np.allclose(predict_logits(alone.model, tok, texts), predict_logits(distilled.model, tok, texts))


def test_a_teacher_is_fitted_first_when_the_config_asks_for_one(tiny_fit) -> None:
    """`fit_taught` is `fit_intent` when `teacher_layers` is 0; otherwise it fits the
    teacher on labels alone (same data, `teacher_layers` deep) and distils it, exactly
    as the two calls made by hand; an unusable weight is refused before any training."""
    from dataclasses import replace

    from model_export.train_intent import fit_intent, fit_taught, load_training_tokenizer, predict_logits

    _, train, config = tiny_fit
    tok = load_training_tokenizer()
    texts = ["how do closures work?", "quiz me on SQL"]
    labels = list(INTENT_LABELS)
    labels_only = replace(config, teacher_layers=0, distill_weight=0.0)
    np.testing.assert_array_equal(
        predict_logits(fit_taught(train, [], labels, labels_only).model, tok, texts),
        predict_logits(fit_intent(train, [], labels, labels_only).model, tok, texts),
    )
    taught_config = replace(config, layers=2, epochs=1, teacher_layers=2, distill_weight=0.5)
    taught = fit_taught(train, [], labels, taught_config)
    teacher = fit_intent(train, [], labels, replace(taught_config, teacher_layers=0, distill_weight=0.0))
    by_hand = fit_intent(train, [], labels, taught_config, teacher=teacher.model)
    np.testing.assert_array_equal(predict_logits(taught.model, tok, texts), predict_logits(by_hand.model, tok, texts))
    assert not np.allclose(predict_logits(taught.model, tok, texts), predict_logits(teacher.model, tok, texts))
    with pytest.raises(ValueError, match="distill_weight"):
        fit_taught(train, [], labels, replace(taught_config, distill_weight=0.0))


def _tiny_mpnet(folder: Path, texts: list[str]) -> Path:
    """A random two-layer MPNet with its own word-level vocabulary and RoBERTa-style
    special tokens (`<pad>` = 1): another architecture and another tokenizer than MiniLM's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import MPNetConfig, MPNetModel

    words = sorted({w for t in texts for w in _norm(t).split()})
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3} | {w: i + 4 for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = MPNetConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    MPNetModel(config).save_pretrained(str(folder))
    return folder


def test_a_teacher_of_another_architecture_teaches_through_its_own_tokenizer(tiny_fit, tmp_path, monkeypatch) -> None:
    """`teacher_base` names the teacher's pretrained model (all-mpnet-base-v2 in use): it
    is fitted on its own tokenizer (MiniLM's ids would overflow its vocabulary), with its
    own learning rate, and distilled exactly as the two calls made by hand."""
    from dataclasses import replace

    from model_export import training
    from model_export.train_intent import fit_intent, fit_taught, load_training_tokenizer, predict_logits

    _, train, config = tiny_fit
    tiny = _tiny_mpnet(tmp_path / "tiny-mpnet", [t for t, _ in train])
    real = training.pretrained_dir
    monkeypatch.setattr(training, "pretrained_dir", lambda base="minilm": tiny if base == "tiny-mpnet" else real(base))
    taught_config = replace(
        config, layers=2, epochs=1, teacher_layers=2, teacher_base="tiny-mpnet", teacher_lr_encoder=1e-3
    )
    labels = list(INTENT_LABELS)
    taught = fit_taught(train, [], labels, taught_config)
    teacher_config = replace(taught_config, teacher_layers=0, distill_weight=0.0, lr_encoder=1e-3)
    teacher = fit_intent(train, [], labels, teacher_config, base="tiny-mpnet")
    assert teacher.model.base == "tiny-mpnet" and not teacher.model._segments
    by_hand = fit_intent(train, [], labels, taught_config, teacher=teacher.model)
    tok = load_training_tokenizer()
    texts = ["how do closures work?", "quiz me on SQL"]
    np.testing.assert_array_equal(predict_logits(taught.model, tok, texts), predict_logits(by_hand.model, tok, texts))
    assert taught.model.base == "minilm"
    alone = fit_intent(train, [], labels, replace(taught_config, teacher_layers=0, distill_weight=0.0))
    assert not np.allclose(predict_logits(taught.model, tok, texts), predict_logits(alone.model, tok, texts))


def test_outliers_join_training_as_the_catch_all_class_with_their_own_weight() -> None:
    """Outlier exposure appends texts as the catch-all label, weighing `outlier_weight`;
    class weights are then folded into the per-example weights (one weighted mean); and
    without outliers or per-example weights the inputs pass through untouched, so the
    product build (neither) trains exactly as before."""
    from model_export.train_intent import IntentConfig, with_outliers

    assert IntentConfig().outlier_weight == 1.0
    train = [("set an alarm", "alarm"), ("what is saas", "oos")]
    labels = ["alarm", "oos"]
    assert with_outliers(train, None, {"oos": 3.0}, (), None, labels, 0.5) == (train, None, {"oos": 3.0})
    examples, weights, class_weights = with_outliers(
        train, None, {"oos": 3.0}, ["the bulb was not damaged"], "oos", labels, 0.5
    )
    assert examples == [*train, ("the bulb was not damaged", "oos")]
    assert weights == [1.0, 3.0, 1.5]
    assert class_weights is None
    with pytest.raises(ValueError, match="outlier_label"):
        with_outliers(train, None, None, ["text"], "off_topic", labels, 1.0)


def test_exported_onnx_served_by_intent_model_matches_torch(tiny_fit, tmp_path: Path) -> None:
    from model_export.base_model import minilm_dir
    from model_export.train_intent import (
        export_onnx,
        load_training_tokenizer,
        predict_logits,
        write_label_file,
    )
    from shared.models.intent import IntentModel

    fit, _, _ = tiny_fit
    export_onnx(fit.model, tmp_path / "intent.onnx")
    write_label_file(fit, tmp_path / "intent_labels.json")
    shutil.copy(minilm_dir() / "tokenizer.json", tmp_path / "tokenizer.json")
    served = IntentModel(tmp_path, {"file": "intent.onnx"})
    texts = ["hi", "why does my recursive function never return, it just hangs forever"]
    torch_logits = predict_logits(fit.model, load_training_tokenizer(), texts)
    np.testing.assert_allclose(served.logits(texts), torch_logits, atol=1e-4)
    probs = served.probabilities(texts)
    np.testing.assert_allclose(probs, softmax(torch_logits, fit.temperature), atol=1e-4)
    assert served.labels == list(INTENT_LABELS)
