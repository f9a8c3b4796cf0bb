"""Cost estimation from the price table."""

from __future__ import annotations

import pytest

from shared.llm.prices import estimate_cost, load_prices, price_of


def test_every_price_is_a_non_negative_pair() -> None:
    table = load_prices()
    assert "gemini-2.5-flash" in table
    assert all(p_in >= 0 and p_out >= 0 for p_in, p_out in table.values())


def test_cost_uses_input_and_output_prices_per_million() -> None:
    table = {"m": (2.0, 8.0)}
    assert estimate_cost("m", 1_000_000, 0, table) == pytest.approx(2.0)
    assert estimate_cost("m", 500, 250, table) == pytest.approx((500 * 2 + 250 * 8) / 1e6)


def test_dated_and_qualified_names_use_the_longest_matching_base() -> None:
    table = {"gemini-2.5-flash": (0.3, 2.5), "gemini-2.5-flash-lite": (0.1, 0.4)}
    assert price_of("gemini-2.5-flash-lite-001", table) == (0.1, 0.4)
    assert price_of("publishers/google/models/gemini-2.5-flash-002", table) == (0.3, 2.5)


def test_unknown_model_or_usage_gives_no_cost_rather_than_a_wrong_one() -> None:
    assert estimate_cost("mystery-model", 10, 10) is None
    assert estimate_cost("gemini-2.5-flash", None, 10) is None
