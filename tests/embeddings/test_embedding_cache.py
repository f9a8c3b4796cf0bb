"""The embedding LRU cache: normalised keys, eviction order, counters."""

import numpy as np
import pytest

from shared.embeddings.cache import EmbeddingCache, normalize_text


def test_normalize_collapses_whitespace_case_and_unicode_forms():
    assert normalize_text("  How do\tLOOPS\n work? ") == "how do loops work?"
    assert normalize_text("ﬁle") == "file"  # NFKC folds the ligature
    assert normalize_text("Keep Case", lowercase=False) == "Keep Case"


def test_lru_evicts_least_recently_used_and_counts_hits_and_misses():
    cache = EmbeddingCache(maxsize=2)
    cache.put("m", "a", np.ones(3))
    cache.put("m", "b", np.zeros(3))
    assert cache.get("m", "a") is not None  # a is now most recent
    cache.put("m", "c", np.ones(3))  # evicts b
    assert cache.get("m", "b") is None
    assert cache.get("m", "c") is not None
    assert cache.stats() | {"hit_rate": None} == {"size": 2, "maxsize": 2, "hits": 2, "misses": 1, "hit_rate": None}
    assert cache.stats()["hit_rate"] == pytest.approx(2 / 3)


def test_model_name_is_part_of_the_key():
    cache = EmbeddingCache()
    cache.put("model-a", "text", np.ones(2))
    assert cache.get("model-b", "text") is None
    assert cache.get("model-a", "text") is not None


def test_cached_vectors_cannot_be_mutated_by_callers():
    cache = EmbeddingCache()
    source = np.ones(2, dtype=np.float32)
    cache.put("m", "k", source)
    source[0] = 5.0  # the caller's array is not the cached one
    cached = cache.get("m", "k")
    assert cached[0] == 1.0
    with pytest.raises(ValueError):
        cached[0] = 3.0


def test_zero_size_cache_stores_nothing():
    cache = EmbeddingCache(maxsize=0)
    cache.put("m", "k", np.ones(2))
    assert len(cache) == 0 and cache.get("m", "k") is None
