"""An in-process LRU cache of embeddings keyed by (model name, normalised text).

Students ask the same few questions in many spellings of whitespace and case; keying on
normalised text turns those into hits. The model name is part of the key so a switch of
back end or encoder version can never return a vector from another embedding space.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict

import numpy as np

_SPACE = re.compile(r"\s+")


def normalize_text(text: str, *, lowercase: bool = True) -> str:
    """NFKC, trimmed, whitespace runs collapsed; lowercased for uncased encoders.

    MiniLM's tokenizer lowercases anyway, so lowercasing changes no vector there; a
    cased back end (Vertex) passes lowercase=False.
    """
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return text.lower() if lowercase else text


class EmbeddingCache:
    """Thread-safe LRU of float32 vectors with hit/miss counters."""

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, key: str) -> np.ndarray | None:
        with self._lock:
            vector = self._data.get((model, key))
            if vector is None:
                self.misses += 1
                return None
            self._data.move_to_end((model, key))
            self.hits += 1
            return vector

    def put(self, model: str, key: str, vector: np.ndarray) -> None:
        if self.maxsize == 0:
            return
        vector = np.array(vector, dtype=np.float32)  # a private, read-only copy
        vector.setflags(write=False)
        with self._lock:
            self._data[(model, key)] = vector
            self._data.move_to_end((model, key))
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def stats(self) -> dict:
        total = self.hits + self.misses
        return {
            "size": len(self._data),
            "maxsize": self.maxsize,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": (self.hits / total) if total else 0.0,
        }
