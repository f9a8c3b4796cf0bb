"""The embedding service over the published INT8 encoder (real model, no torch).

The encoder class itself is tested in test_encoder.py; this checks what the service adds
on the real model: same vectors as the encoder, the model name tied to the encoder's
bytes, and the cache counters. Skips with the reason when nothing is published.
"""

import numpy as np
import pytest

from shared.embeddings.backends import RegistryEncoderBackend
from shared.embeddings.service import EmbeddingService
from shared.models.registry import ModelRegistry, ModelUnavailableError
from tests.needs import missing


@pytest.fixture(scope="module")
def registry():
    reg = ModelRegistry(ttl_s=3600, classes={"encoder": "shared.models.encoder:EncoderModel"})
    try:
        reg.get("encoder")
    except ModelUnavailableError as exc:
        missing(f"no published encoder: {exc}")
    return reg


@pytest.fixture
def service(registry):
    return EmbeddingService(RegistryEncoderBackend(registry))


def test_service_returns_the_encoders_vectors_in_order(registry, service):
    texts = ["How do for loops work?", "hi", "  how do FOR loops work? ", "explain recursion"]
    direct = registry.get("encoder").embed(["how do for loops work?", "hi", "explain recursion"])
    served = service.embed(texts)
    assert served.shape == (4, 384) and served.dtype == np.float32
    np.testing.assert_array_equal(served[0], served[2])
    cosines = np.sum(served[[0, 1, 3]] * direct, axis=1)
    assert cosines.min() > 0.995  # batch composition shifts INT8 activations a hair, no more


def test_model_name_names_the_encoder_bytes_and_the_cache_counts(registry, service):
    digest = registry.loaded.manifest["files"]["encoder.onnx"]["sha256"]
    assert service.model_name.endswith(digest[:12]) and "int8" in service.model_name
    service.embed(["one", "two"])
    service.embed(["One ", "three"])
    stats = service.stats()
    assert (stats["hits"], stats["misses"], stats["backend_calls"]) == (1, 3, 2)
