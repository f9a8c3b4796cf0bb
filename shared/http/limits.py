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
per seconds, per user); `RATE_LIMITS=off` turns them off (load tests). They are kept in
each instance's memory: with N instances a user gets at most N times the limit, which
bounds spending without a shared store; `max_instances` in terraform/ bounds N.

The OpenAPI document lists 429 on every limited route (shared/http/openapi.py reads
the marker this decorator leaves on the handler).
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.http.errors import ApiError

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


_limiter: RateLimiter | None = None
_limiter_source: str | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> RateLimiter:
    """The process limiter, rebuilt when RATE_LIMITS changes (tests set it)."""
    global _limiter, _limiter_source
    source = os.environ.get("RATE_LIMITS", DEFAULT_LIMITS)
    with _limiter_lock:
        if _limiter is None or source != _limiter_source:
            _limiter, _limiter_source = RateLimiter(parse_limits(source)), source
        return _limiter


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
