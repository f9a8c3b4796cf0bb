"""Per-user rate limits counted in Redis (REDIS_URL): instances share one budget; Redis
down → each instance counts on its own again (never a refusal for everyone, never a
crash), and the log says so. Against a real redis-server on loopback."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest
import redis

from shared.http import limits as limits_module
from shared.http.limits import Limit, RateLimiter, RedisRateLimiter, get_limiter

CHAT_3 = {"chat": Limit(3, 60)}


def instance(url: str, limits: dict[str, Limit] | None = None, **kw) -> RedisRateLimiter:
    """One function instance's limiter (each instance builds its own)."""
    return RedisRateLimiter.from_url(limits or CHAT_3, url, **kw)


def test_two_instances_share_one_budget(redis_server):
    first, second = instance(redis_server.url), instance(redis_server.url)
    assert first.acquire("chat", "alice") == 0
    assert second.acquire("chat", "alice") == 0
    assert first.acquire("chat", "alice") == 0
    # Three of three spent, across both: each instance now refuses alice...
    assert 0 < second.acquire("chat", "alice") <= 20
    assert 0 < first.acquire("chat", "alice") <= 20
    # ...but not bob, and not another bucket.
    assert second.acquire("chat", "bob") == 0
    assert first.acquire("content", "alice") == 0  # no limit configured for it
    assert first.errors == second.errors == 0


def test_in_memory_instances_would_each_allow_the_whole_budget():
    """The baseline the shared limiter fixes: two per-instance limiters allow 2 x 3."""
    first, second = RateLimiter(CHAT_3), RateLimiter(CHAT_3)
    allowed = sum(limiter.acquire("chat", "alice") == 0 for limiter in (first, second) for _ in range(3))
    assert allowed == 6


def test_the_bucket_refills_on_redis_time(redis_server):
    limiter = instance(redis_server.url, {"chat": Limit(1, 0.5)})
    assert limiter.acquire("chat", "alice") == 0
    wait = limiter.acquire("chat", "alice")
    assert 0 < wait <= 0.5
    time.sleep(wait + 0.1)
    assert limiter.acquire("chat", "alice") == 0


def test_keys_hold_no_uid_and_expire(redis_server):
    limiter = instance(redis_server.url)
    limiter.acquire("chat", "alice@example.org")
    client = redis.Redis.from_url(redis_server.url)
    keys = [k.decode() for k in client.keys("*")]
    assert keys == [f"rl:chat:{hashlib.sha256(b'alice@example.org').hexdigest()}"]
    assert 0 < client.ttl(keys[0]) <= 61  # gone once the bucket would be full again


def test_redis_down_counts_per_instance_and_says_so(redis_server, caplog):
    limiter = instance(redis_server.url, cooldown_s=60)
    assert limiter.acquire("chat", "alice") == 0  # counted in Redis
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="shared.http.limits"):
        # Nobody is refused for Redis's sake: alice gets this instance's own budget...
        assert [limiter.acquire("chat", "alice") for _ in range(3)] == [0, 0, 0]
        # ...which is still a limit.
        assert limiter.acquire("chat", "alice") > 0
        assert limiter.acquire("chat", "bob") == 0
    warnings = [r for r in caplog.records if r.getMessage() == "rate limits counted per instance: Redis unavailable"]
    assert len(warnings) == 1  # in the cooldown Redis is not dialled again
    assert limiter.errors == 1 and not limiter.shared


def test_shared_counting_resumes_after_the_cooldown(redis_server, caplog):
    limiter = instance(redis_server.url, cooldown_s=0.2)
    redis_server.stop()
    assert limiter.acquire("chat", "alice") == 0  # per instance
    redis_server.start()  # same port: Memorystore back
    time.sleep(0.3)
    with caplog.at_level(logging.INFO, logger="shared.http.limits"):
        assert limiter.acquire("chat", "alice") == 0
    assert limiter.shared
    assert any(r.getMessage() == "rate limits counted in Redis again" for r in caplog.records)
    assert redis.Redis.from_url(redis_server.url).keys("rl:chat:*")  # counted in Redis again


def test_an_unreachable_redis_from_the_start_degrades_too(caplog):
    with caplog.at_level(logging.WARNING, logger="shared.http.limits"):
        limiter = instance("redis://127.0.0.1:1/0", cooldown_s=60)  # nothing listens on port 1
        assert [limiter.acquire("chat", "alice") for _ in range(4)][:3] == [0, 0, 0]
    assert limiter.errors == 1


def test_an_unusable_redis_url_falls_back_to_memory(monkeypatch, caplog):
    monkeypatch.setenv("RATE_LIMITS", "chat=3/60")
    monkeypatch.setenv("REDIS_URL", "not-a-redis-url")
    with caplog.at_level(logging.ERROR, logger="shared.http.limits"):
        limiter = get_limiter()
    assert isinstance(limiter, RateLimiter)
    assert any("REDIS_URL unusable" in r.getMessage() for r in caplog.records)


@pytest.fixture()
def course(db):
    """The demo course, for real chat turns."""
    from local.stack import DEMO_COURSE
    from shared.curriculum import load_course_file

    with db.begin() as conn:
        load_course_file(conn, DEMO_COURSE)
    return db


@pytest.fixture()
def fresh_limiter(monkeypatch):
    """The process limiter is rebuilt for the test and forgotten after it."""
    monkeypatch.setattr(limits_module, "_limiter", None)
    monkeypatch.setattr(limits_module, "_limiter_source", None)


def new_instance() -> None:
    """What a new function instance has: no limiter state in memory."""
    limits_module._limiter = None


def test_over_http_a_new_instance_continues_the_users_budget(
    client,
    bearer,
    course,
    monkeypatch,
    redis_server,
    fresh_limiter,
):
    monkeypatch.setenv("RATE_LIMITS", "chat=3/60")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    alice = bearer("alice")

    def turn() -> int:
        return client.post("/api/chat", json={"message": "what is a loop?"}, headers=alice).status_code

    assert isinstance(get_limiter(), RedisRateLimiter)
    assert [turn(), turn()] == [200, 200]
    new_instance()
    assert turn() == 200
    refused = client.post("/api/chat", json={"message": "what is a loop?"}, headers=alice)
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20

    # Redis gone: the next instance answers from its own budget instead of refusing or failing.
    redis_server.stop()
    new_instance()
    assert turn() == 200


def test_the_limiter_and_the_embedding_cache_share_one_redis_pool():
    """One Redis, one client (one connection pool) per process, whoever asks first."""
    from shared.embeddings.shared_cache import RedisEmbeddingCache

    url = "redis://127.0.0.1:1/7"  # never dialled: clients connect on their first command
    cache = RedisEmbeddingCache.from_url(url)
    assert instance(url).client is cache.client
    assert RedisEmbeddingCache.from_url(url, timeout_s=2).client is not cache.client  # other options, other client
