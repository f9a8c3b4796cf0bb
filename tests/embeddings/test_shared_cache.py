"""The shared (Redis) embedding cache against a real `redis-server` on loopback:
instances share vectors, encoder versions stay apart, and Redis going down costs
hits, never answers."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import pytest

from local.loopback import free_port, start_redis
from shared.embeddings.service import EmbeddingService
from shared.embeddings.shared_cache import RedisEmbeddingCache

REDIS = shutil.which("redis-server")
if REDIS is None and os.environ.get("CI"):
    raise RuntimeError("redis-server is required in CI (make test installs it as root: apt-get install redis-server)")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed (apt-get install redis-server)")


@pytest.fixture()
def redis_server() -> Iterator[dict]:
    workdir = tempfile.mkdtemp(prefix="cc-redis-")
    proc, port = start_redis(workdir)
    server = {"port": port, "url": f"redis://127.0.0.1:{port}/0", "proc": proc}
    yield server
    server["proc"].terminate()
    server["proc"].wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


class CountingBackend:
    """A deterministic stand-in encoder that counts the texts it is asked to embed."""

    uncased = True

    def __init__(self, model_name: str = "fake-encoder@v1") -> None:
        self.model_name = model_name
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        out = []
        for text in texts:
            rng = np.random.default_rng(abs(hash((self.model_name, text))) % 2**32)
            v = rng.standard_normal(8).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


def _instance(url: str, backend: CountingBackend, **kw) -> EmbeddingService:
    return EmbeddingService(backend, shared_cache=RedisEmbeddingCache.from_url(url, **kw))


def test_a_second_instance_answers_from_redis_without_the_model(redis_server):
    first_backend, second_backend = CountingBackend(), CountingBackend()
    first = _instance(redis_server["url"], first_backend)
    second = _instance(redis_server["url"], second_backend)

    vectors = first.embed(["What is a loop?", "Newton's third law"])
    again = second.embed(["what is a   LOOP?", "Newton's third law", "a new question"])

    assert second_backend.texts == ["a new question"]  # the two known ones came from Redis
    np.testing.assert_allclose(again[:2], vectors, rtol=0, atol=0)
    stats = second.stats()
    assert stats["shared"]["hits"] == 2 and stats["shared"]["misses"] == 1 and stats["shared"]["errors"] == 0
    assert stats["misses"] == 3  # the LRU of the new instance was cold
    second.embed(["what is a loop?"])
    assert second.stats()["hits"] == 1  # ... and is warm now: Redis not asked again
    assert second.stats()["shared"]["hits"] == 2


def test_encoder_versions_never_share_vectors(redis_server):
    old = _instance(redis_server["url"], CountingBackend("fake-encoder@v1"))
    new_backend = CountingBackend("fake-encoder@v2")
    new = _instance(redis_server["url"], new_backend)
    old.embed(["same text"])
    new.embed(["same text"])
    assert new_backend.texts == ["same text"]


def test_keys_hold_no_student_text(redis_server):
    import redis

    service = _instance(redis_server["url"], CountingBackend())
    service.embed(["my secret question"])
    keys = [k.decode() for k in redis.Redis.from_url(redis_server["url"]).keys("*")]
    assert len(keys) == 1 and "secret" not in keys[0] and keys[0].startswith("emb:fake-encoder@v1:")


def test_redis_down_costs_hits_not_answers(redis_server):
    backend = CountingBackend()
    service = _instance(redis_server["url"], backend, cooldown_s=60)
    service.embed(["before the outage"])
    redis_server["proc"].kill()
    redis_server["proc"].wait(10)

    started = time.monotonic()
    out = service.embed(["during the outage", "another one"])
    assert out.shape == (2, 8) and backend.texts[-2:] == ["during the outage", "another one"]
    shared = service.stats()["shared"]
    assert shared["errors"] >= 1 and shared["available"] is False
    # In the cooldown Redis is not even dialled: no timeout per request while it is down.
    service.embed(["third question"])
    assert service.stats()["shared"]["errors"] == shared["errors"]
    assert time.monotonic() - started < 5


def test_unreachable_redis_at_start_degrades_too():
    port = free_port()  # nothing listens there
    backend = CountingBackend()
    service = _instance(f"redis://127.0.0.1:{port}/0", backend)
    assert service.embed(["hello"]).shape == (1, 8)
    assert service.stats()["shared"]["errors"] == 1
