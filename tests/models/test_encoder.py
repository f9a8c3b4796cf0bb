"""The published INT8 encoder (shared/models/encoder.py) on real text."""

from __future__ import annotations

import json

import numpy as np

TEXTS = [
    "How do for loops work in Python?",
    "ok",
    "My recursive function never stops and I get RecursionError: maximum recursion depth "
    "exceeded while calling a Python object, what am I doing wrong?",
    "Explain what a hash map is.",
]


def test_embeddings_are_unit_vectors_of_the_declared_dimension(encoder) -> None:
    vectors = encoder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and encoder.dimension == 384
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_batching_and_length_sorting_keep_the_callers_order(encoder) -> None:
    batched = encoder.embed(TEXTS)
    one_by_one = np.vstack([encoder.embed([t]) for t in TEXTS])
    # padding differs between the two, so INT8 activations differ slightly
    cosines = np.sum(batched * one_by_one, axis=1)
    assert cosines.min() > 0.98, cosines


def test_small_batches_give_the_same_vectors(encoder) -> None:
    from shared.models.encoder import EncoderModel

    small = EncoderModel.__new__(EncoderModel)
    small.__dict__.update(encoder.__dict__)
    small.batch_size = 1
    np.testing.assert_allclose(small.embed(TEXTS), np.vstack([encoder.embed([t]) for t in TEXTS]), atol=1e-5)


def test_empty_input_gives_an_empty_matrix(encoder) -> None:
    assert encoder.embed([]).shape == (0, 384)


def test_similar_questions_are_closer_than_unrelated_ones(encoder) -> None:
    a, b, c = encoder.embed(
        [
            "How does a for loop work?",
            "Can you explain how loops iterate in Python?",
            "What's a good recipe for banana bread?",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3


def test_long_inputs_are_truncated_not_rejected(encoder) -> None:
    long_text = "recursion " * 2000
    vector = encoder.embed([long_text])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


def test_buckets_group_similar_lengths_and_respect_the_batch_size() -> None:
    from types import SimpleNamespace

    from shared.models.encoder import EncoderModel

    lengths = np.array([30, 3, 10, 3, 31, 4, 200])
    buckets = EncoderModel._buckets(SimpleNamespace(batch_size=32), lengths)
    assert [sorted(lengths[b].tolist()) for b in buckets] == [[3, 3, 4], [10], [30, 31], [200]]
    assert sorted(np.concatenate(buckets).tolist()) == list(range(len(lengths)))
    small = EncoderModel._buckets(SimpleNamespace(batch_size=2), lengths)
    assert max(len(b) for b in small) == 2
    assert sorted(np.concatenate(small).tolist()) == list(range(len(lengths)))


def test_the_encoder_is_a_served_model_described_by_its_config(encoder) -> None:
    from shared.models.encoder import EncoderDescription, EncoderModel
    from shared.models.onnx_model import ServedModel

    assert isinstance(encoder, ServedModel) and EncoderModel.name == "encoder"
    config = json.loads((encoder.version_dir / "encoder_config.json").read_text())
    assert encoder.description == EncoderDescription.from_config(config)
    assert encoder.base_model == config["base_model"] and encoder.dimension == config["dimension"]
    # the base's hooks give the same vectors for a batch of one as embed()
    np.testing.assert_allclose(encoder.infer(["explain recursion"]), encoder.embed(["explain recursion"]), atol=1e-6)


def test_the_embedding_space_is_named_from_the_base_model_and_the_graph_bytes(encoder) -> None:
    from types import SimpleNamespace

    from shared.embeddings.backends import RegistryEncoderBackend

    manifest = {"models": {"encoder": {"file": "encoder.onnx"}}, "files": {"encoder.onnx": {"sha256": "ab" * 32}}}
    registry = SimpleNamespace(loaded=SimpleNamespace(manifest=manifest, models={"encoder": encoder}))
    assert RegistryEncoderBackend(registry).model_name == f"{encoder.base_model}-int8-onnx:{'ab' * 6}"


def test_a_description_without_optional_fields_takes_the_defaults() -> None:
    from shared.models.encoder import EncoderDescription

    assert EncoderDescription.from_config({"dimension": "384"}) == EncoderDescription(384, 256, "all-MiniLM-L6-v2")


def test_sessions_do_not_spin_between_runs() -> None:
    """A turn runs three sessions back to back on 1-2 vCPUs: idle threads must sleep."""
    from shared.models.onnx_model import session_options

    options = session_options(2)
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
