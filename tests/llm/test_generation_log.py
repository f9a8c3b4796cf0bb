"""Usage in `generation_log`: one row per call, with status, tokens and cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from shared.llm import LLMRouter, LLMUnavailableError, Prompt, ProviderError, log_failure, log_generation
from shared.llm.providers.offline import OfflineProvider
from shared.llm.types import ProviderResult


class Scripted:
    """A provider that plays back results and errors (the HTTP shapes are tested elsewhere)."""

    name = "scripted"

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def rows(engine: Any) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM generation_log ORDER BY id")).mappings()]


def test_fallback_writes_the_failed_calls_then_the_answer(db: Any) -> None:
    failing = Scripted(
        ProviderError("scripted", "HTTP 503", transient=True, status=503),
        ProviderError("scripted", "HTTP 503", transient=True, status=503),
    )
    router = LLMRouter(
        {"scripted": failing, "offline": OfflineProvider()},
        ["scripted", "offline"],
        {"scripted": {"default": "gemini-2.5-flash"}},
        max_attempts=2,
        sleep=lambda _s: None,
    )
    generation = router.generate("chat", Prompt.simple("sys", "hello"))
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES ('alice')"))
        interaction_id = conn.execute(
            sa.text(
                "INSERT INTO interactions (request_id, user_id, query) VALUES ('req-1', 'alice', 'hello') RETURNING id"
            )
        ).scalar_one()
        ids = log_generation(conn, generation, request_id="req-1", interaction_id=str(interaction_id))

    logged = rows(db)
    assert [r["id"] for r in logged] == ids
    assert [(r["provider"], r["status"]) for r in logged] == [
        ("scripted", "error"),
        ("scripted", "error"),
        ("offline", "fallback"),
    ]
    assert all(r["request_id"] == "req-1" and r["interaction_id"] == interaction_id for r in logged)
    assert all(r["task"] == "chat" and "[user]\nhello" in r["prompt"] for r in logged)
    assert logged[0]["error"].startswith("scripted: HTTP 503")
    assert logged[2]["raw_response"] == generation.text


def test_tokens_and_cost_are_stored(db: Any) -> None:
    provider = Scripted(ProviderResult("answer", "gemini-2.5-flash", tokens_in=1000, tokens_out=200))
    router = LLMRouter({"scripted": provider}, ["scripted"])
    generation = router.generate("explanation", Prompt.simple("s", "u"))
    with db.begin() as conn:
        log_generation(conn, generation, request_id="req-2")
    (row,) = rows(db)
    assert (row["status"], row["tokens_in"], row["tokens_out"]) == ("ok", 1000, 200)
    assert row["cost_usd"] == Decimal("0.000800")  # 1000 × 0.30/1M + 200 × 2.50/1M
    assert row["interaction_id"] is None and row["latency_ms"] >= 0


def test_a_total_failure_is_logged_too(db: Any) -> None:
    provider = Scripted(ProviderError("scripted", "HTTP 401", transient=False, status=401))
    router = LLMRouter({"scripted": provider}, ["scripted"])
    with pytest.raises(LLMUnavailableError) as info:
        router.generate("grading", Prompt.simple("s", "u"))
    with db.begin() as conn:
        log_failure(conn, info.value, request_id="req-3")
    (row,) = rows(db)
    assert (row["task"], row["status"], row["request_id"]) == ("grading", "error", "req-3")
    assert "HTTP 401" in row["error"]
