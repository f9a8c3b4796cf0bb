"""The shared embedding cache: Redis (Memorystore in the cloud) behind the in-process LRU.

Why a second layer: the LRU lives and dies with one function instance, and Cloud
Functions scale out and to zero, so most instances start cold. Redis is shared by
every instance, so a question one instance embedded is a hit for all the others.

Keys are `<prefix>:<model>:<sha256 of the normalised text>`: the model name (which
carries the encoder version) keeps embedding spaces apart, the hash keeps keys short
and student text out of key listings. Values are raw little-endian float32 bytes.

Redis is an optimisation, never a dependency: every call has a short timeout, and
after a failure the layer stays out of the way for `cooldown_s` (no reconnect storm on
each request while Memorystore is down), so the service answers from the model.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.redis_client import shared_client

log = logging.getLogger(__name__)


class RedisEmbeddingCache:
    """A batch get/put of float32 vectors in Redis, with counters and a failure cooldown."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "emb",
        ttl_s: int | None = 30 * 24 * 3600,
        cooldown_s: float = 30.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.cooldown_s = cooldown_s
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._down_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, ca_cert: str | None = None, timeout_s: float = 0.1, **kw: Any
    ) -> RedisEmbeddingCache:
        """A cache over `url` (redis://, or rediss:// for TLS; a password in the URL is
        sent as AUTH). With `ca_cert` (PEM) the server must chain to that CA and only to
        it (see `shared.redis_client.pinned_ca_connection`); without it rediss:// verifies chain and host name
        against the system store, as any TLS client would.
        """
        client = shared_client(url, ca_cert=ca_cert, timeout_s=timeout_s)
        return cls(client, **kw)

    def key(self, model: str, text_key: str) -> str:
        digest = hashlib.sha256(text_key.encode("utf-8")).hexdigest()
        return f"{self.prefix}:{model}:{digest}"

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._down_until = time.monotonic() + self.cooldown_s
        log.warning(
            "shared embedding cache unavailable; answering without it",
            extra={"operation": what, "error": type(exc).__name__, "cooldown_s": self.cooldown_s},
        )

    def get_many(self, model: str, text_keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors Redis has for these keys; {} when it has none or is down."""
        if not text_keys or not self.available:
            return {}
        try:
            raw = self.client.mget([self.key(model, k) for k in text_keys])
        except Exception as exc:  # noqa: BLE001 - any client or network error degrades to a miss
            self._failed("get", exc)
            return {}
        found = {k: np.frombuffer(v, dtype="<f4").copy() for k, v in zip(text_keys, raw, strict=True) if v}
        with self._lock:
            self.hits += len(found)
            self.misses += len(text_keys) - len(found)
        return found

    def put_many(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors or not self.available:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for text_key, vector in vectors.items():
                pipe.set(self.key(model, text_key), np.asarray(vector, dtype="<f4").tobytes(), ex=self.ttl_s)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - a lost write only costs a future miss
            self._failed("put", exc)

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "hit_rate": (self.hits / total) if total else 0.0,
            "available": self.available,
        }
