"""A daily LLM budget per deployment (and optionally per user), enforced before it is spent.

Spend is what `generation_log` says was spent since midnight UTC, read from the database
so every instance of every function sees the same number; each instance caches the read
for a few seconds and adds its own calls since, so a burst on one instance cannot run
past the budget between two reads. When the database cannot be read the last known
figure is kept (a stale budget is better than none; with no figure at all the budget
cannot be enforced and the log says so).

The router asks `pressure(user_id)` before a task: past `degrade_at` (a share of a
budget) it stops insisting on the task's tier and tries the cheapest choices first; and
`allows(cost, user_id)` before each paid call: a call whose worst-case cost would take
the spend past a budget is not made, so cheaper tiers, free local models and finally the
offline composer answer instead. Free calls are always allowed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: reads the spend (USD) since midnight UTC: of everyone (None) or of one user
SpendReader = Callable[[str | None], float]
#: cached readings kept at most (one per user seen within the cache time, plus everyone's)
MAX_READINGS = 10_000


@dataclass
class _Reading:
    day: dt.date
    usd: float
    read_at: float
    local_since: float = 0.0


class DailyBudget:
    def __init__(
        self,
        daily_usd: float | None,
        user_daily_usd: float | None = None,
        *,
        read_spend: SpendReader | None = None,
        cache_s: float = 10.0,
        degrade_at: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self.daily_usd = daily_usd or None
        self.user_daily_usd = user_daily_usd or None
        self._read = read_spend or read_spend_from_database
        self.cache_s = cache_s
        self.degrade_at = degrade_at
        self._clock = clock
        self._today = today
        self._readings: dict[str | None, _Reading] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> DailyBudget | None:
        daily = getattr(settings, "llm_daily_budget_usd", None)
        per_user = getattr(settings, "llm_user_daily_budget_usd", None)
        if not daily and not per_user:
            return None
        return cls(
            daily,
            per_user,
            cache_s=settings.llm_spend_cache_s,
            degrade_at=settings.llm_budget_degrade_at,
        )

    # --- what has been spent ---------------------------------------------------------
    def spent(self, user_id: str | None = None) -> float:
        """USD spent today (of everyone, or of one user): the cached read plus this instance's calls since."""
        day = self._today()
        with self._lock:
            reading = self._readings.get(user_id)
            fresh = reading is not None and reading.day == day and self._clock() - reading.read_at < self.cache_s
            if fresh:
                assert reading is not None
                return reading.usd + reading.local_since
        try:
            usd = float(self._read(user_id))
        except Exception:
            log.warning("LLM spend could not be read; using the last known figure", exc_info=True)
            with self._lock:
                if reading is not None and reading.day == day:
                    return reading.usd + reading.local_since
            return 0.0
        with self._lock:
            now = self._clock()
            if len(self._readings) >= MAX_READINGS:  # one per active user: drop the stale ones
                self._readings = {k: r for k, r in self._readings.items() if now - r.read_at < self.cache_s}
            self._readings[user_id] = _Reading(day, usd, now)
        return usd

    def record(self, cost_usd: float | None, user_id: str | None = None) -> None:
        """A paid call this instance made (its log row may not be written yet)."""
        if not cost_usd:
            return
        with self._lock:
            for key in {None, user_id}:
                reading = self._readings.get(key)
                if reading is not None:
                    reading.local_since += cost_usd

    # --- decisions -------------------------------------------------------------------
    def _limits(self, user_id: str | None) -> list[tuple[str | None, float]]:
        limits: list[tuple[str | None, float]] = []
        if self.daily_usd:
            limits.append((None, self.daily_usd))
        if self.user_daily_usd and user_id:
            limits.append((user_id, self.user_daily_usd))
        return limits

    def pressure(self, user_id: str | None = None) -> bool:
        """Past `degrade_at` of a budget: route cheapest first, whatever the task's tier."""
        return any(self.spent(key) >= self.degrade_at * limit for key, limit in self._limits(user_id))

    def allows(self, worst_case_usd: float, user_id: str | None = None) -> bool:
        """Would a call costing at most this keep every budget unspent?"""
        if worst_case_usd <= 0:
            return True
        return all(self.spent(key) + worst_case_usd <= limit for key, limit in self._limits(user_id))

    def describe(self) -> dict[str, Any]:
        return {
            "daily_usd": self.daily_usd,
            "user_daily_usd": self.user_daily_usd,
            "degrade_at": self.degrade_at,
            "spent_today_usd": round(self.spent(None), 6) if self.daily_usd else None,
        }


def read_spend_from_database(user_id: str | None) -> float:
    """The generation log's spend since midnight UTC (the default reader)."""
    from shared.db.engine import get_engine
    from shared.llm.generation_log import spent_today

    with get_engine().connect() as conn:
        return spent_today(conn, user_id)
