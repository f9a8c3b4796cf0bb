"""Cost- and quality-aware routing and the daily budget: which choice answers, what is
reported, and that the budget is kept before it is spent (also across instances, through
the generation log)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import Settings
from shared.llm import LLMRouter, Message, Prompt, ProviderError, log_generation
from shared.llm.budget import DailyBudget
from shared.llm.providers.offline import OfflineProvider
from shared.llm.routing import RoutingTable, default_table
from shared.llm.types import ProviderResult

PROMPT = Prompt(system="Be brief.", messages=(Message("user", "what is a list?"),), max_output_tokens=200)


class Fake:
    """Answers (or fails) every call, recording the models asked for; tokens make a cost."""

    def __init__(self, name: str, *, fail: bool = False, free: bool = False) -> None:
        self.name, self.fail, self.free = name, fail, free
        self.models: list[str] = []
        self.max_output_tokens = 1024

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        self.models.append(model)
        if self.fail:
            raise ProviderError(self.name, "HTTP 503", transient=True, status=503)
        return ProviderResult(f"{self.name} says hi", model, tokens_in=1000, tokens_out=200)

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Any:
        result = self.generate(model, prompt, timeout_s)
        yield result.text
        yield result


TABLE = RoutingTable.parse(
    {"chat": 2, "explanation": 3},
    {
        "chat": [
            {"provider": "openai", "model": "gpt-4.1", "tier": 3},
            {"provider": "vertex", "model": "gemini-2.5-flash", "tier": 2},
            {"provider": "openai", "model": "gpt-4.1-mini", "tier": 2},
            {"provider": "vertex", "model": "gemini-2.5-flash-lite", "tier": 1},
            {"provider": "local", "model": None, "tier": 1},
        ],
        "explanation": [
            {"provider": "openai", "model": "gpt-4.1", "tier": 3},
            {"provider": "vertex", "model": "gemini-2.5-pro", "tier": 3},
            {"provider": "local", "model": "llama3.2:3b", "tier": 1},
        ],
    },
)


def make_router(*, budget: DailyBudget | None = None, fail: tuple[str, ...] = ()) -> tuple[LLMRouter, dict[str, Fake]]:
    fakes = {
        "vertex": Fake("vertex", fail="vertex" in fail),
        "openai": Fake("openai", fail="openai" in fail),
        "local": Fake("local", fail="local" in fail, free=True),
    }
    router = LLMRouter(
        {**fakes, "offline": OfflineProvider()},
        ["vertex", "openai", "local", "offline"],
        {"local": {"default": "llama3.2:1b"}},
        retry_initial_s=0,
        retry_max_s=0,
        max_attempts=1,
        routing=TABLE,
        budget=budget,
        sleep=lambda s: None,
    )
    return router, fakes


def planned(router: LLMRouter, task: str, prompt: Prompt = PROMPT) -> list[tuple[str, str, int | None]]:
    steps, _ = router.plan(task, prompt)
    return [(s.provider, s.model, s.tier) for s in steps]


# --- routing ----------------------------------------------------------------------------


def test_cheapest_choice_at_or_above_the_tier_first_then_weaker_then_offline() -> None:
    router, _ = make_router()
    # chat needs tier 2: flash (0.85/1M) < 4.1-mini (0.70) ... by the 3:1 mix: mini 0.70, flash 0.85, 4.1 3.50
    assert planned(router, "chat") == [
        ("openai", "gpt-4.1-mini", 2),
        ("vertex", "gemini-2.5-flash", 2),
        ("openai", "gpt-4.1", 3),
        ("local", "llama3.2:1b", 1),  # lower tier: free first within the tier
        ("vertex", "gemini-2.5-flash-lite", 1),
        ("offline", "offline-composer-1", 0),
    ]
    generation = router.generate("chat", PROMPT)
    assert (generation.provider, generation.model, generation.tier) == ("openai", "gpt-4.1-mini", 2)
    assert generation.usage()["tier"] == 2 and generation.usage()["budget_limited"] is False


def test_warm_up_builds_the_client_of_the_provider_the_plan_tries_first() -> None:
    router, fakes = make_router()
    warmed: list[str] = []
    for name, fake in fakes.items():
        fake.warm_up = lambda name=name: warmed.append(name)  # type: ignore[attr-defined]
    assert router.warm_up("chat") == "openai" == planned(router, "chat")[0][0]
    assert router.warm_up("explanation") == planned(router, "explanation")[0][0]
    assert warmed == ["openai", planned(router, "explanation")[0][0]]
    assert all(not fake.models for fake in fakes.values())  # nothing was called
    offline_only = LLMRouter({"offline": OfflineProvider()}, ["offline"])
    assert offline_only.warm_up("chat") is None  # the composer has no client to build


def test_an_unhealthy_choice_is_skipped_and_the_next_cheapest_answers() -> None:
    router, fakes = make_router(fail=("openai",))
    generation = router.generate("chat", PROMPT)
    assert (generation.provider, generation.model) == ("vertex", "gemini-2.5-flash")
    for _ in range(5):
        router.generate("chat", PROMPT)  # openai's breaker opens after 5 failed calls
    calls = len(fakes["openai"].models)
    generation = router.generate("chat", PROMPT)
    assert generation.provider == "vertex" and len(fakes["openai"].models) == calls  # skipped, not called
    assert [a.status for a in generation.attempts if a.provider == "openai"] == ["skipped"]


def test_everything_paid_down_falls_to_the_local_model_then_offline() -> None:
    router, _ = make_router(fail=("openai", "vertex"))
    generation = router.generate("explanation", PROMPT)
    assert (generation.provider, generation.model, generation.tier, generation.cost_usd) == (
        "local",
        "llama3.2:3b",
        1,
        0.0,
    )
    router, _ = make_router(fail=("openai", "vertex", "local"))
    assert router.generate("explanation", PROMPT).offline


def test_tasks_without_routes_keep_the_provider_order() -> None:
    router, _ = make_router()
    assert [p for p, _, _ in planned(router, "grading")] == ["vertex", "openai", "local", "offline"]


def test_the_default_table_is_valid_and_routes_every_named_task() -> None:
    table = default_table()
    assert set(table.tiers) == {"chat", "explanation", "quiz", "grading"} <= set(table.routes)
    for task, tier in table.tiers.items():
        assert any(c.tier >= tier for c in table.routes[task]), task
        assert any(c.provider in ("local", "gguf") for c in table.routes[task]), task


def test_routes_and_tiers_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDERS", "vertex")
    monkeypatch.setenv("LLM_TASK_TIERS", '{"chat": 1}')
    monkeypatch.setenv("LLM_ROUTES", '{"chat": [{"provider": "vertex", "model": "gemini-2.5-flash-lite", "tier": 1}]}')
    router = LLMRouter.from_settings(Settings())
    assert router.routing is not None and router.routing.tier_of("chat") == 1
    assert router.routing.tier_of("explanation") == 3  # the default file's, not replaced
    assert planned(router, "chat") == [("vertex", "gemini-2.5-flash-lite", 1), ("offline", "offline-composer-1", 0)]
    monkeypatch.setenv("LLM_ROUTES", '{"chat": [{"provider": "vertex", "tier": -1}]}')
    with pytest.raises(ValueError, match="must not be negative"):
        LLMRouter.from_settings(Settings())


# --- the daily budget -------------------------------------------------------------------


class Ledger:
    """A spend reader standing in for the database, counting its reads."""

    def __init__(self, everyone: float = 0.0, **users: float) -> None:
        self.everyone, self.users, self.reads = everyone, users, 0
        self.down = False

    def __call__(self, user_id: str | None) -> float:
        self.reads += 1
        if self.down:
            raise ConnectionError("database down")
        return self.everyone if user_id is None else self.users.get(user_id, 0.0)


def test_below_the_degrade_mark_the_tier_is_kept() -> None:
    router, _ = make_router(budget=DailyBudget(1.0, read_spend=Ledger(0.5)))
    generation = router.generate("chat", PROMPT)
    assert (generation.provider, generation.tier, generation.budget_limited) == ("openai", 2, False)


def test_past_the_degrade_mark_the_cheapest_choice_answers() -> None:
    router, _ = make_router(budget=DailyBudget(1.0, read_spend=Ledger(0.85), degrade_at=0.8))
    generation = router.generate("explanation", PROMPT)
    assert (generation.provider, generation.cost_usd, generation.budget_limited) == ("local", 0.0, True)
    assert generation.usage()["budget_limited"] is True


def test_a_call_that_could_overrun_the_budget_is_not_made() -> None:
    # 0.00001 USD left: any paid call's worst case is more; no local model either
    router, fakes = make_router(budget=DailyBudget(1.0, read_spend=Ledger(0.99999)), fail=("local",))
    generation = router.generate("chat", PROMPT)
    assert generation.offline and generation.budget_limited
    assert fakes["openai"].models == [] and fakes["vertex"].models == []
    skipped = {(a.provider, a.error) for a in generation.attempts if a.status == "skipped"}
    assert ("openai", "daily LLM budget") in skipped and ("vertex", "daily LLM budget") in skipped


def test_the_per_user_budget_limits_that_user_only() -> None:
    ledger = Ledger(0.0, heavy=0.05)
    router, _ = make_router(budget=DailyBudget(None, 0.05, read_spend=ledger))
    heavy = router.generate("chat", Prompt(**{**PROMPT.__dict__, "user_id": "heavy"}))
    light = router.generate("chat", Prompt(**{**PROMPT.__dict__, "user_id": "light"}))
    assert heavy.provider == "local" and heavy.budget_limited and heavy.user_id == "heavy"
    assert light.provider == "openai" and not light.budget_limited


def test_spend_is_cached_briefly_with_this_instances_calls_added() -> None:
    now = [0.0]
    ledger = Ledger(0.10)
    budget = DailyBudget(1.0, read_spend=ledger, cache_s=10.0, clock=lambda: now[0])
    assert budget.spent() == pytest.approx(0.10) and ledger.reads == 1
    budget.record(0.05)
    assert budget.spent() == pytest.approx(0.15) and ledger.reads == 1  # cached, plus the local call
    now[0] = 11.0
    ledger.everyone = 0.30  # other instances spent meanwhile
    assert budget.spent() == pytest.approx(0.30) and ledger.reads == 2
    ledger.down = True
    now[0] = 22.0
    assert budget.spent() == pytest.approx(0.30)  # the last known figure, not zero


def test_an_unpriced_model_is_called_under_a_budget_only_with_its_own_price() -> None:
    table = RoutingTable.parse(
        {"chat": 1},
        {"chat": [{"provider": "openai", "model": "ft:gpt-4.1-mini:tutor", "tier": 1}]},
    )
    router, fakes = make_router(budget=DailyBudget(1.0, read_spend=Ledger(0.0)))
    router.routing = table
    assert router.generate("chat", PROMPT).offline and fakes["openai"].models == []  # cost unknowable
    router.routing = RoutingTable.parse(
        {"chat": 1}, {"chat": [{"provider": "openai", "model": "ft:gpt-4.1-mini:tutor", "tier": 1, "price": 3.0}]}
    )
    assert router.generate("chat", PROMPT).provider == "openai"
    info = router.describe()
    assert info["tiers"] == {"chat": 1} and info["budget"]["daily_usd"] == 1.0


def test_budget_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_DAILY_BUDGET_USD", raising=False)
    assert LLMRouter.from_settings(Settings()).budget is None
    monkeypatch.setenv("LLM_DAILY_BUDGET_USD", "25")
    monkeypatch.setenv("LLM_USER_DAILY_BUDGET_USD", "0.5")
    monkeypatch.setenv("LLM_BUDGET_DEGRADE_AT", "0.9")
    budget = LLMRouter.from_settings(Settings()).budget
    assert budget is not None and (budget.daily_usd, budget.user_daily_usd, budget.degrade_at) == (25, 0.5, 0.9)


def test_spend_is_read_from_the_generation_log_across_instances(db: Any) -> None:
    """Two routers (two instances) share one budget through the database."""
    first, _ = make_router(budget=DailyBudget(1.0, 1.0, cache_s=0))
    paid = first.generate("chat", Prompt(**{**PROMPT.__dict__, "user_id": "u1"}))
    assert paid.cost_usd and paid.cost_usd > 0
    with db.begin() as conn:
        log_generation(conn, paid, "req-1")
        log_generation(conn, paid, "req-2")
    second_budget = DailyBudget(1.0, 1.0, cache_s=0)
    assert second_budget.spent() == pytest.approx(2 * paid.cost_usd)
    assert second_budget.spent("u1") == pytest.approx(2 * paid.cost_usd)
    assert second_budget.spent("u2") == 0.0


def test_streams_follow_the_same_plan_and_budget() -> None:
    router, _ = make_router()
    *deltas, final = list(router.stream("chat", PROMPT))
    assert deltas == ["openai says hi"] and (final.provider, final.model, final.tier) == ("openai", "gpt-4.1-mini", 2)
    router, fakes = make_router(budget=DailyBudget(1.0, read_spend=Ledger(0.99999)))
    *deltas, final = list(router.stream("explanation", PROMPT))
    assert (final.provider, final.cost_usd, final.budget_limited) == ("local", 0.0, True)
    assert fakes["openai"].models == [] and fakes["vertex"].models == []
