"""Cost estimation from a price table (`prices.json`, USD per 1M tokens in/out).

The table is data beside the code so a price change is a one-line edit, not a
release of logic. Dated model names (`gemini-2.5-flash-002`, `gpt-4.1-mini-2025-04-14`)
are priced as their base name: the longest table key that prefixes the model wins.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"


@lru_cache(maxsize=4)
def load_prices(path: Path = PRICES_FILE) -> dict[str, tuple[float, float]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: (float(p["input"]), float(p["output"])) for name, p in data["models"].items()}


def price_of(model: str, table: dict[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    table = load_prices() if table is None else table
    if model in table:
        return table[model]
    bare = model.rsplit("/", 1)[-1]  # publishers/google/models/gemini-... → gemini-...
    matches = [name for name in table if bare.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def estimate_cost(
    model: str, tokens_in: int | None, tokens_out: int | None, table: dict[str, tuple[float, float]] | None = None
) -> float | None:
    """USD for one call, or None when the model is not priced or usage is unknown."""
    price = price_of(model, table)
    if price is None or tokens_in is None or tokens_out is None:
        return None
    return round((tokens_in * price[0] + tokens_out * price[1]) / 1_000_000, 9)
