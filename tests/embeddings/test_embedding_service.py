"""The embedding service over a fake back end: de-duplication, caching, batching, order."""

import numpy as np
import pytest

from shared.embeddings.backends import l2_normalize
from shared.embeddings.service import EmbeddingService


class FakeBackend:
    """Deterministic 8-d vectors from a text hash; records every batch it is sent."""

    uncased = True

    def __init__(self, name: str = "fake-v1") -> None:
        self.name = name
        self.batches: list[list[str]] = []

    @property
    def model_name(self) -> str:
        return self.name

    def embed(self, texts):
        self.batches.append(list(texts))
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts]
        return l2_normalize(np.array(rows))


def test_duplicates_in_a_batch_are_embedded_once_and_order_is_kept():
    backend = FakeBackend()
    service = EmbeddingService(backend)
    vectors = service.embed(["How do loops work?", "b", "  how do LOOPS   work? ", "b"])
    assert backend.batches == [["how do loops work?", "b"]]
    assert vectors.shape == (4, 8) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[3])
    assert not np.allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_second_call_is_served_from_the_cache():
    backend = FakeBackend()
    service = EmbeddingService(backend)
    first = service.embed(["x", "y"])
    second = service.embed(["y", "x", "z"])
    assert backend.batches == [["x", "y"], ["z"]]
    np.testing.assert_array_equal(first[0], second[1])
    stats = service.stats()
    assert (stats["hits"], stats["misses"], stats["model"]) == (2, 3, "fake-v1")


def test_misses_are_sent_in_batches_of_at_most_batch_size():
    backend = FakeBackend()
    service = EmbeddingService(backend, batch_size=3)
    service.embed([f"text {i}" for i in range(7)])
    assert [len(b) for b in backend.batches] == [3, 3, 1]


def test_a_new_model_name_does_not_reuse_old_vectors():
    backend = FakeBackend("encoder:aaaa")
    service = EmbeddingService(backend)
    service.embed(["same text"])
    backend.name = "encoder:bbbb"  # a newly published encoder
    service.embed(["same text"])
    assert len(backend.batches) == 2


def test_cased_backend_keeps_case_apart():
    backend = FakeBackend()
    backend.uncased = False
    service = EmbeddingService(backend)
    service.embed(["Python", "python"])
    assert backend.batches == [["Python", "python"]]


def test_empty_input_and_bad_batch_size():
    assert EmbeddingService(FakeBackend()).embed([]).shape[0] == 0
    with pytest.raises(ValueError):
        EmbeddingService(FakeBackend(), batch_size=0)
