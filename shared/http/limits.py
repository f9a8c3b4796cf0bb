"""Per-user rate limits on the routes that spend LLM money: 429 with Retry-After.

A handler opts in with a decorator placed *under* the route declaration, so the router
registers the limited handler:

    @router.post("/", body=ChatRequest)
    @rate_limited("chat")
    def chat_turn(req): ...

    @router.post("/", body=GradeRequest)
    @rate_limited("llm_grading", when=lambda req: isinstance(req.body.answer, str))
    def grade(req): ...

The check runs after authentication and validation (an invalid request costs nothing
and is not counted) and before the handler. Each bucket allows `capacity` requests per
user, refilled continuously over `per_seconds` (a token bucket, so a burst of
`capacity` is allowed, then a steady rate). Refused requests are not counted.

Limits come from `RATE_LIMITS` (`chat=20/60,content=6/60,llm_grading=30/60`: requests
per seconds, per user); `RATE_LIMITS=off` turns them off (load tests).

Where they are counted: with `REDIS_URL` set (the Redis the embedding cache uses), in
Redis, so every instance draws on one budget per user (`RedisRateLimiter`: one Lua
script per request, atomic, on Redis's clock; keys `rl:<bucket>:<sha256 of the uid>`
expire once the bucket would be full again). Redis is never a reason to refuse: when it
cannot be reached (100 ms timeouts) the request is counted in the instance's memory
instead, a warning says so, and Redis is not dialled again for `cooldown_s`. Without
`REDIS_URL`, or while Redis is down, limits are per instance: with N instances a user
gets at most N times the limit (`max_instances` in terraform/ bounds N).

The OpenAPI document lists 429 on every limited route (shared/http/openapi.py reads
the marker this decorator leaves on the handler).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.http.errors import ApiError
from shared.redis_client import shared_client

log = logging.getLogger(__name__)

DEFAULT_LIMITS = "chat=20/60,content=6/60,llm_grading=30/60"
MAX_TRACKED_USERS = 100_000  # per bucket; the least recently seen are forgotten beyond that


@dataclass(frozen=True)
class Limit:
    capacity: int
    per_seconds: float

    @property
    def rate(self) -> float:
        return self.capacity / self.per_seconds


def parse_limits(text: str) -> dict[str, Limit]:
    """`chat=20/60,content=6/60` → {"chat": Limit(20, 60), ...}; `off` or empty → {}."""
    text = (text or "").strip()
    if text.lower() in ("", "off", "none", "0"):
        return {}
    limits = {}
    for part in text.split(","):
        name, _, spec = part.strip().partition("=")
        count, _, seconds = spec.partition("/")
        limit = Limit(int(count), float(seconds or 60))
        if not name or limit.capacity < 1 or limit.per_seconds <= 0:
            raise ValueError(f"bad RATE_LIMITS entry: {part!r}")
        limits[name.strip()] = limit
    return limits


class RateLimiter:
    """Token buckets per (bucket, user), thread-safe, bounded in memory."""

    def __init__(self, limits: dict[str, Limit], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, OrderedDict[str, tuple[float, float]]] = {}

    def acquire(self, bucket: str, user: str) -> float:
        """0 when the request may proceed (and is counted), else the seconds to wait."""
        limit = self.limits.get(bucket)
        if limit is None:
            return 0.0
        now = self.clock()
        with self._lock:
            users = self._state.setdefault(bucket, OrderedDict())
            tokens, last = users.pop(user, (float(limit.capacity), now))
            tokens = min(float(limit.capacity), tokens + (now - last) * limit.rate)
            if tokens >= 1.0:
                users[user] = (tokens - 1.0, now)
                wait = 0.0
            else:
                users[user] = (tokens, now)
                wait = (1.0 - tokens) / limit.rate
            while len(users) > MAX_TRACKED_USERS:
                users.popitem(last=False)
            return wait


# The token bucket of RateLimiter.acquire, in Redis: atomic per key, on the server's clock
# (instances' clocks may differ). Returns the seconds to wait as a string (a Lua number
# would be truncated to an integer reply); "0" means counted.
_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return tostring(wait)
"""


class RedisRateLimiter:
    """The same token buckets, kept in Redis and shared by every instance; the
    instance's own `RateLimiter` answers while Redis cannot (see the module docstring)."""

    def __init__(
        self,
        limits: dict[str, Limit],
        client: Any,
        *,
        prefix: str = "rl",
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.client = client
        self.prefix = prefix
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.fallback = RateLimiter(limits, clock)
        self.errors = 0
        self._degraded = False
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._script = client.register_script(_BUCKET_SCRIPT)

    @classmethod
    def from_url(
        cls, limits: dict[str, Limit], url: str, *, ca_cert: str | None = None, timeout_s: float = 0.1, **kw: Any
    ) -> RedisRateLimiter:
        """Over the same Redis (and TLS/AUTH settings) as the embedding cache."""
        client = shared_client(url, ca_cert=ca_cert, timeout_s=timeout_s)
        return cls(limits, client, **kw)

    def key(self, bucket: str, user: str) -> str:
        """No uid in key listings: the user is a hash."""
        return f"{self.prefix}:{bucket}:{hashlib.sha256(user.encode('utf-8')).hexdigest()}"

    @property
    def shared(self) -> bool:
        """True while requests are counted in Redis (False in a failure's cooldown)."""
        return self.clock() >= self._down_until

    def acquire(self, bucket: str, user: str) -> float:
        """0 when the request may proceed (and is counted), else the seconds to wait."""
        limit = self.limits.get(bucket)
        if limit is None:
            return 0.0
        if self.shared:
            try:
                ttl = math.ceil(limit.per_seconds) + 1  # a bucket untouched this long is full: forget it
                wait = self._script(keys=[self.key(bucket, user)], args=[limit.capacity, repr(limit.rate), ttl])
                if self.errors and self._degraded:
                    self._degraded = False
                    log.info("rate limits counted in Redis again", extra={"errors": self.errors})
                return max(0.0, float(wait))
            except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to per-instance counting
                self._failed(exc)
        return self.fallback.acquire(bucket, user)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._degraded = True
            self._down_until = self.clock() + self.cooldown_s
        log.warning(
            "rate limits counted per instance: Redis unavailable",
            extra={"error": type(exc).__name__, "cooldown_s": self.cooldown_s},
        )


Limiter = RateLimiter | RedisRateLimiter
_limiter: Limiter | None = None
_limiter_source: tuple[str, str] | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> Limiter:
    """The process limiter: in Redis with REDIS_URL set, else in memory; rebuilt when
    RATE_LIMITS or REDIS_URL changes (tests set them)."""
    global _limiter, _limiter_source
    source = (os.environ.get("RATE_LIMITS", DEFAULT_LIMITS), os.environ.get("REDIS_URL", "").strip())
    with _limiter_lock:
        if _limiter is None or source != _limiter_source:
            _limiter, _limiter_source = _build(parse_limits(source[0]), source[1]), source
        return _limiter


def _build(limits: dict[str, Limit], redis_url: str) -> Limiter:
    if not redis_url or not limits:
        return RateLimiter(limits)
    try:
        return RedisRateLimiter.from_url(limits, redis_url, ca_cert=os.environ.get("REDIS_CA_CERT") or None)
    except Exception as exc:  # noqa: BLE001 - a bad REDIS_URL must not refuse every request
        log.error(
            "rate limits counted per instance: REDIS_URL unusable",
            extra={"error": type(exc).__name__},
        )
        return RateLimiter(limits)


def rate_limited(bucket: str, *, when: Callable[[Any], bool] | None = None) -> Callable:
    """Limit a handler per user in `bucket`; `when(req)` (optional) says whether this
    request spends (e.g. only short answers go to the LLM grader)."""

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def limited(req: Any) -> Any:
            if when is None or when(req):
                wait = get_limiter().acquire(bucket, req.user.uid)
                if wait > 0:
                    seconds = max(1, math.ceil(wait))
                    raise ApiError(
                        429,
                        "rate_limited",
                        f"Too many requests of this kind; retry in {seconds} s.",
                        headers={"Retry-After": str(seconds)},
                    )
            return handler(req)

        limited.__rate_limit__ = bucket  # type: ignore[attr-defined]
        return limited

    return decorate
