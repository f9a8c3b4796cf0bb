"""Which provider/model choices a task may use, in what order: cost- and quality-aware.

Each task needs a quality tier (`tiers`); each choice of a task (`routes`) has a tier and
a price. The order the router tries them in:

1. the choices at or above the task's tier, cheapest first (ties: the LLM_PROVIDERS order);
2. then the choices below it, best tier first, cheapest within a tier (a weaker answer
   beats none when every good provider is down);
3. the offline composer, last (it is free and always answers).

A choice whose breaker is open is skipped by the router at call time, so the first one
tried is "the cheapest healthy choice at or above the tier". Under budget pressure (see
`shared.llm.budget`) the tier requirement drops and the order becomes cheapest first, and
a choice whose worst-case cost would overrun the budget is left out before it is called.
Tasks without routes use the LLM_PROVIDERS order and LLM_MODELS, as before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.llm.prices import price_of

ROUTING_FILE = Path(__file__).resolve().parent / "routing.json"
#: input:output token mix of a typical call (prompts carry the retrieved material)
_IN_SHARE, _OUT_SHARE = 0.75, 0.25


@dataclass(frozen=True)
class Choice:
    """One way to write a task's text: a provider, its model (None: the provider's own) and tier."""

    provider: str
    model: str | None = None
    tier: int = 1
    #: USD per 1M tokens (3 input : 1 output); None: from prices.json
    price: float | None = None


@dataclass(frozen=True)
class Step:
    """A planned call: the choice with its resolved model and price (inf when unknown)."""

    provider: str
    model: str
    tier: int | None
    price: float


@dataclass(frozen=True)
class RoutingTable:
    tiers: dict[str, int]
    routes: dict[str, tuple[Choice, ...]]

    @classmethod
    def parse(cls, tiers: dict[str, Any], routes: dict[str, Any]) -> RoutingTable:
        """From JSON-shaped data; a malformed entry is a configuration error, said at start-up."""
        parsed: dict[str, tuple[Choice, ...]] = {}
        for task, choices in routes.items():
            if not isinstance(choices, list):
                raise ValueError(f"LLM routes for {task!r} must be a list of choices")
            items = []
            for c in choices:
                tier = int(c.get("tier", 1))
                price = c.get("price")
                if tier < 0 or (price is not None and float(price) < 0):
                    raise ValueError(f"LLM route choice {c!r}: tier and price must not be negative")
                items.append(Choice(str(c["provider"]), c.get("model"), tier, None if price is None else float(price)))
            parsed[task] = tuple(items)
        return cls({task: int(t) for task, t in tiers.items()}, parsed)

    def tier_of(self, task: str) -> int:
        return self.tiers.get(task, 0)


@lru_cache(maxsize=1)
def default_table() -> RoutingTable:
    data = json.loads(ROUTING_FILE.read_text(encoding="utf-8"))
    return RoutingTable.parse(data["tiers"], data["routes"])


def table_from_settings(settings: Any) -> RoutingTable:
    """routing.json, with LLM_TASK_TIERS / LLM_ROUTES replacing its parts when set."""
    base = default_table()
    tiers = getattr(settings, "llm_task_tiers", None)
    routes = getattr(settings, "llm_routes", None)
    return RoutingTable(
        {**base.tiers, **(tiers or {})},
        RoutingTable.parse({}, routes).routes if routes is not None else base.routes,
    )


def unit_price(model: str, free: bool) -> float:
    """USD per 1M tokens at the typical mix; inf when the model is not priced."""
    if free:
        return 0.0
    price = price_of(model)
    return math.inf if price is None else _IN_SHARE * price[0] + _OUT_SHARE * price[1]


def order_steps(steps: list[Step], min_tier: int, rank: dict[str, int]) -> list[Step]:
    """At or above the tier cheapest first, then lower tiers best first; offline last."""
    offline = [s for s in steps if s.provider == "offline"]
    rest = [s for s in steps if s.provider != "offline"]
    good = sorted((s for s in rest if (s.tier or 0) >= min_tier), key=lambda s: (s.price, rank.get(s.provider, 99)))
    weaker = sorted(
        (s for s in rest if (s.tier or 0) < min_tier),
        key=lambda s: (-(s.tier or 0), s.price, rank.get(s.provider, 99)),
    )
    return good + weaker + offline
