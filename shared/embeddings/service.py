"""The embedding service: caches, de-duplication and batching over one back end.

One instance per process (`get_embedding_service()`), so the in-process LRU is shared by
every request a function instance serves; with REDIS_URL set, a Redis layer behind it
(`shared_cache.py`) is shared by every instance. Lookups go LRU -> Redis -> model, and
what the model computes is written to both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from shared.embeddings.backends import EmbeddingBackend
from shared.embeddings.cache import EmbeddingCache, normalize_text
from shared.embeddings.shared_cache import RedisEmbeddingCache
from shared.errors import UnavailableError
from shared.identity import Principal
from shared.logs import log_event

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


class EmbeddingService:
    """Embeds texts through `backend`, answering repeats from an LRU cache."""

    def __init__(
        self,
        backend: EmbeddingBackend,
        *,
        cache_size: int = 4096,
        batch_size: int = DEFAULT_BATCH_SIZE,
        shared_cache: RedisEmbeddingCache | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.backend = backend
        self.cache = EmbeddingCache(cache_size)
        self.shared_cache = shared_cache
        self.batch_size = batch_size
        self.backend_calls = 0  # batches sent to the back end (for tests and metrics)

    @property
    def model_name(self) -> str:
        """The embedding space of the vectors returned now; store it beside them."""
        return self.backend.model_name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, in the caller's order.

        Texts equal after normalisation are embedded once; cached ones not at all; the
        rest go to the back end in batches of at most `batch_size`.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self.model_name
        lowercase = getattr(self.backend, "uncased", False)
        keys = [normalize_text(t, lowercase=lowercase) for t in texts]
        found: dict[str, np.ndarray] = {}
        todo: list[str] = []  # unique keys to embed, first-seen order
        for key in dict.fromkeys(keys):
            vector = self.cache.get(model, key)
            if vector is None:
                todo.append(key)
            else:
                found[key] = vector
        if todo and self.shared_cache is not None:
            for key, vector in self.shared_cache.get_many(model, todo).items():
                self.cache.put(model, key, vector)
                found[key] = vector
            todo = [key for key in todo if key not in found]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            self.backend_calls += 1
            vectors = self.backend.embed(chunk)
            computed = {}
            for key, vector in zip(chunk, vectors, strict=True):
                self.cache.put(model, key, vector)
                found[key] = computed[key] = vector
            if self.shared_cache is not None:
                self.shared_cache.put_many(model, computed)
        computed_count = len(todo)
        unique = len(found)
        log_event(
            log,
            "embedding_cache",
            logging.INFO,
            model=model,
            hits=unique - computed_count,
            misses=computed_count,
            cache_hit=computed_count == 0,
        )
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def stats(self) -> dict:
        """Counters per layer: the LRU's at the top level (as before), Redis's under `shared`."""
        shared = self.shared_cache.stats() if self.shared_cache is not None else None
        return {"model": self.model_name, "backend_calls": self.backend_calls, **self.cache.stats(), "shared": shared}


#: the embeddings route's limits: a request is one batch, answered in well under a second
MAX_TEXTS = 64
MAX_CHARS = 2000


class EncoderUnavailableError(UnavailableError):
    code = "encoder_unavailable"


def embed_for_service(principal: Principal, texts: Sequence[str]) -> dict:
    """Vectors for another back end, with the encoder version they belong to.

    Admins and service accounts only. The limits (MAX_TEXTS, MAX_CHARS) are checked by
    the route's request model; the vectors are the ones retrieval uses (same cache), so a
    caller that stores them must store `model` beside them and re-embed when it changes.
    """
    principal.require_admin_or_service()
    service = get_embedding_service()
    try:
        model = service.model_name
        vectors = service.embed(texts)
    except Exception as exc:  # the encoder is missing or broken: the caller retries later
        log.error("embeddings route: the encoder is unavailable", exc_info=True)
        raise EncoderUnavailableError("The encoder is not available right now; try again.") from exc
    return {
        "model": model,
        "dim": int(vectors.shape[1]) if vectors.size else 0,
        "count": len(texts),
        "vectors": [[round(float(x), 7) for x in row] for row in vectors],
    }


_service: EmbeddingService | None = None
_service_lock = threading.Lock()


def backend_from_settings() -> EmbeddingBackend:
    """EMBEDDING_BACKEND=onnx (default, the local INT8 encoder) or vertex."""
    from shared.config import get_settings

    settings = get_settings()
    kind = settings.embedding_backend
    if kind == "vertex":
        from shared.embeddings.backends import VertexBackend

        return VertexBackend(
            settings.vertex_embedding_model,
            project=settings.gcp_project,
            location=settings.gcp_region,
            dimension=settings.vertex_embedding_dim,
        )
    if kind != "onnx":
        raise ValueError(f"unknown EMBEDDING_BACKEND {kind!r} (expected onnx or vertex)")
    from shared.embeddings.backends import RegistryEncoderBackend

    return RegistryEncoderBackend()


def get_embedding_service() -> EmbeddingService:
    """The process-wide service over the configured back end (created on first use)."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                from shared.config import get_settings

                settings = get_settings()
                shared = None
                if settings.redis_url:
                    shared = RedisEmbeddingCache.from_url(
                        settings.redis_url.get_secret_value(),
                        ca_cert=settings.redis_ca_cert,
                        ttl_s=settings.embedding_cache_ttl_s,
                    )
                _service = EmbeddingService(
                    backend_from_settings(), cache_size=settings.embedding_cache_size, shared_cache=shared
                )
    return _service


def reset_embedding_service() -> None:
    global _service
    with _service_lock:
        _service = None
