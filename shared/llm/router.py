"""The LLM router: which provider and model write a task's text, and what to do when one fails.

For each task the chain is the configured provider order (with the offline provider
as last resort). Each provider gets `max_attempts` tries on transient errors with
exponential backoff and jitter (tenacity), each try bounded by the per-call timeout;
a provider whose circuit breaker is open is skipped without a call; a non-transient
error moves straight to the next provider. Every try is recorded as an Attempt so the
generation log shows what happened and what it cost. When the whole chain fails the
caller gets LLMUnavailableError: a clear error, never a half answer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.stop import stop_base

from shared.llm.breaker import CircuitBreaker
from shared.llm.budget import DailyBudget
from shared.llm.errors import LLMUnavailableError, ProviderError, StructuredOutputError
from shared.llm.prices import estimate_cost
from shared.llm.providers.base import Provider
from shared.llm.routing import RoutingTable, Step, order_steps, table_from_settings, unit_price
from shared.llm.structured import InvalidJsonAnswer, json_instruction, parse_as
from shared.llm.types import Attempt, Generation, Message, Prompt, ProviderResult, StreamReset
from shared.logs import log_event

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

#: used when the configuration names no model for a provider at all
BUILTIN_MODELS = {
    "vertex": "gemini-2.5-flash",
    "openai": "gpt-4.1-mini",
    "anthropic": "claude-haiku-4-5",
    "offline": "offline-composer-1",
    "local": "local-model",
}
#: non-transient statuses that still say the provider (or our access to it) is broken
_UNHEALTHY_STATUSES = frozenset({401, 403, 404})


class _CircuitOpen(Exception):
    """Internal: the provider's breaker refused the call (never retried)."""


def _counts_against_health(exc: ProviderError) -> bool:
    """A 400 for our prompt or a refused answer is not an outage; timeouts, 5xx, 429, auth are."""
    return exc.transient or exc.status in _UNHEALTHY_STATUSES


class LLMRouter:
    def __init__(
        self,
        providers: dict[str, Provider],
        order: list[str],
        models: dict[str, dict[str, str]] | None = None,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 3,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 8.0,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 30.0,
        json_attempts: int = 2,
        deadline_s: float | None = None,
        routing: RoutingTable | None = None,
        budget: DailyBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = [name for name in order if name not in providers]
        if unknown:
            raise ValueError(f"providers in the order but not configured: {unknown}")
        self.providers = providers
        self.order = list(order)
        self.models = models or {}
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.json_attempts = json_attempts
        self.deadline_s = deadline_s or None
        self.routing = routing
        self.budget = budget
        self._sleep = sleep
        self.breakers = {name: CircuitBreaker(breaker_failures, breaker_cooldown_s, clock) for name in providers}

    # --- configuration ----------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> LLMRouter:
        """The router the configuration describes; providers without credentials are left out."""
        from shared.llm.providers.offline import OfflineProvider

        providers: dict[str, Provider] = {}
        order: list[str] = []
        names = list(settings.llm_providers)
        if settings.llm_offline_last_resort and "offline" not in names:
            names.append("offline")
        for name in names:
            provider = _build_provider(name, settings)
            if provider is not None and name not in providers:
                providers[name] = provider
                order.append(name)
        if not order:
            log.error("no LLM provider is usable; falling back to the offline provider")
            providers, order = {"offline": OfflineProvider()}, ["offline"]
        options: dict[str, Any] = {
            "timeout_s": settings.llm_timeout_s,
            "max_attempts": settings.llm_max_attempts,
            "retry_initial_s": settings.llm_retry_initial_s,
            "retry_max_s": settings.llm_retry_max_s,
            "breaker_failures": settings.llm_breaker_failures,
            "breaker_cooldown_s": settings.llm_breaker_cooldown_s,
            "json_attempts": settings.llm_json_attempts,
            "deadline_s": getattr(settings, "llm_deadline_s", None),
            "routing": table_from_settings(settings),
            "budget": DailyBudget.from_settings(settings),
        }
        options.update(overrides)
        return cls(providers, order, _local_models(settings), **options)

    def model_for(self, provider: str, task: str) -> str:
        per_provider = self.models.get(provider, {})
        return per_provider.get(task) or per_provider.get("default") or BUILTIN_MODELS.get(provider, "default")

    def describe(self) -> dict[str, Any]:
        """For /api/health: the chain, each provider's breaker, and where it points."""
        providers = {}
        for name in self.order:
            describe = getattr(self.providers[name], "describe", None)
            providers[name] = {
                "model": self.model_for(name, "default"),
                "breaker": self.breakers[name].describe(),
                **(describe() if describe else {}),
            }
        usable = any(self.breakers[n].state != "open" for n in self.order)
        info: dict[str, Any] = {"status": "ok" if usable else "degraded", "chain": list(self.order)}
        info["providers"] = providers
        if self.routing is not None:
            info["tiers"] = dict(self.routing.tiers)
        if self.budget is not None:
            info["budget"] = self.budget.describe()
        return info

    # --- the plan for one task -------------------------------------------------------
    def plan(self, task: str, prompt: Prompt, attempts: list[Attempt] | None = None) -> tuple[list[Step], bool]:
        """The calls to try for this task, in order, and whether the daily budget changed them.

        With routes for the task (shared/llm/routing.py): the cheapest choice at or above
        the task's tier first. Under budget pressure: cheapest first, whatever the tier; a
        paid call whose worst case would overrun a budget is left out (an Attempt
        `skipped`, "daily LLM budget"), so free local models and the offline composer
        answer before the budget is exceeded.
        """
        attempts = [] if attempts is None else attempts
        steps, min_tier = self._candidates(task)
        limited = False
        if self.budget is not None:
            if self.budget.pressure(prompt.user_id):
                limited, min_tier = True, 0
            kept = []
            for step in steps:
                worst = self._worst_case_usd(step, prompt)
                if worst > 0 and not self.budget.allows(worst, prompt.user_id):
                    attempts.append(Attempt(step.provider, step.model, "skipped", error="daily LLM budget"))
                    limited = True
                    continue
                kept.append(step)
            steps = kept
        if min_tier is not None:
            steps = order_steps(steps, min_tier, self._rank)
        return steps, limited

    @property
    def _rank(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.order)}

    def _candidates(self, task: str) -> tuple[list[Step], int | None]:
        """The task's calls before the budget has its say, and the tier to order them by
        (None: in the configured order)."""
        rank = self._rank
        choices = self.routing.routes.get(task) if self.routing is not None else None
        steps: list[Step] = []
        min_tier: int | None = None
        if choices:
            min_tier = self.routing.tier_of(task) if self.routing is not None else 0
            seen: set[tuple[str, str]] = set()
            for c in choices:
                if c.provider not in rank or c.provider == "offline":
                    continue
                model = c.model or self.model_for(c.provider, task)
                if (c.provider, model) in seen:
                    continue
                seen.add((c.provider, model))
                price = c.price if c.price is not None else unit_price(model, self._free(c.provider))
                steps.append(Step(c.provider, model, c.tier, price))
            if "offline" in rank:
                steps.append(Step("offline", self.model_for("offline", task), 0, 0.0))
        else:
            for name in self.order:
                model = self.model_for(name, task)
                steps.append(Step(name, model, None, unit_price(model, self._free(name))))
        return steps, min_tier

    def warm_up(self, task: str) -> str | None:
        """Build the client of the provider a call for `task` tries first (its connection
        pool; for Vertex the credentials' lookup and first token) before the first call
        needs it (shared/warm_up.py); returns that provider's name, None when it has
        nothing to build (the offline composer)."""
        steps, min_tier = self._candidates(task)
        if min_tier is not None:
            steps = order_steps(steps, min_tier, self._rank)
        if not steps:
            return None
        warm = getattr(self.providers[steps[0].provider], "warm_up", None)
        if warm is None:
            return None
        warm()
        return steps[0].provider

    def _free(self, name: str) -> bool:
        return bool(getattr(self.providers.get(name), "free", False)) or name == "offline"

    def _worst_case_usd(self, step: Step, prompt: Prompt) -> float:
        """The most this call can cost: the prompt (~4 characters a token) and a full answer."""
        if step.price == 0:
            return 0.0
        cap: int = prompt.max_output_tokens or getattr(self.providers[step.provider], "max_output_tokens", None) or 1024
        tokens_in = len(prompt.render()) // 4 + 1
        cost = estimate_cost(step.model, tokens_in, cap)
        if cost is None:  # not in prices.json: the route's own price, if it gave one; else unknowable
            return step.price * (tokens_in + cap) / 1_000_000
        return cost

    # --- plain text -------------------------------------------------------------------
    def generate(self, task: str, prompt: Prompt) -> Generation:
        """The first answer the plan produces; LLMUnavailableError if none does."""
        return self._generate(task, prompt)

    def _generate(self, task: str, prompt: Prompt, exclude: frozenset[str] = frozenset()) -> Generation:
        """With a deadline (issue 12): each call gets at most the time left, no retry starts
        past it, and once it has passed only the offline provider (no network, answers at
        once) is tried, so a slow or hanging provider costs at most `deadline_s`."""
        started = time.perf_counter()
        deadline = time.monotonic() + self.deadline_s if self.deadline_s else None
        attempts: list[Attempt] = []
        steps, limited = self.plan(task, prompt, attempts)
        for step in steps:
            name, model = step.provider, step.model
            if name in exclude:
                continue
            own_deadline = deadline if name != "offline" else None
            if own_deadline is not None and own_deadline - time.monotonic() < MIN_CALL_S:
                attempts.append(Attempt(name, model, "skipped", error="deadline passed"))
                continue
            try:
                result = self._retrying(own_deadline)(self._call_once, name, model, prompt, attempts, own_deadline)
            except (ProviderError, _CircuitOpen):
                continue
            return self._generation(task, step, result, prompt, attempts, started, limited)
        raise LLMUnavailableError(task, attempts, prompt.render(), prompt.user_id)

    def _retrying(self, deadline: float | None = None) -> Retrying:
        stop: Any = stop_after_attempt(self.max_attempts)
        if deadline is not None:
            stop = stop | _StopAtDeadline(deadline)
        return Retrying(
            stop=stop,
            wait=wait_exponential_jitter(initial=self.retry_initial_s, max=self.retry_max_s),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.transient),
            sleep=self._sleep,
            reraise=True,
        )

    def _call_once(
        self, name: str, model: str, prompt: Prompt, attempts: list[Attempt], deadline: float | None = None
    ) -> ProviderResult:
        breaker = self.breakers[name]
        if not breaker.allow():
            attempts.append(Attempt(name, model, "skipped", error="circuit open"))
            raise _CircuitOpen(name)
        t0 = time.perf_counter()
        try:
            timeout = self.timeout_s if deadline is None else max(0.1, min(self.timeout_s, deadline - time.monotonic()))
            result = self.providers[name].generate(model, prompt, timeout)
        except Exception as exc:
            raise self._failed(name, model, exc, t0, attempts) from exc
        breaker.record_success()
        attempts.append(self._ok_attempt(name, result, t0, prompt.user_id))
        return result

    def _failed(self, name: str, model: str, exc: Exception, t0: float, attempts: list[Attempt]) -> ProviderError:
        """Record a failed call; a provider bug (not a ProviderError) is contained, not raised."""
        if not isinstance(exc, ProviderError):
            log.exception("LLM provider %s raised an unexpected error", name)
            exc = ProviderError(name, f"provider bug: {type(exc).__name__}: {str(exc)[:200]}", transient=False)
        if _counts_against_health(exc):
            self.breakers[name].record_failure()
        else:
            # The provider answered (a refusal or our bad request): it is healthy.
            self.breakers[name].record_success()
        failed = Attempt(
            name,
            model,
            "error",
            error=str(exc)[:500],
            latency_ms=(time.perf_counter() - t0) * 1000,
            raw_response=exc.raw_response,
        )
        attempts.append(failed)
        log.warning(
            "LLM call failed",
            extra={"provider": name, "model": model, "error": str(exc)[:300], "transient": exc.transient},
        )
        _log_call(failed, "error")
        return exc

    def _ok_attempt(self, name: str, result: ProviderResult, t0: float, user_id: str | None = None) -> Attempt:
        free = getattr(self.providers[name], "free", False)  # a local model: no bill, whatever its name
        ok = Attempt(
            name,
            result.model,
            "ok",
            latency_ms=(time.perf_counter() - t0) * 1000,
            raw_response=result.text,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            cost_usd=0.0 if free else estimate_cost(result.model, result.tokens_in, result.tokens_out),
        )
        _log_call(ok, "ok")
        if self.budget is not None:
            self.budget.record(ok.cost_usd, user_id)
        return ok

    @staticmethod
    def _generation(
        task: str,
        step: Step,
        result: ProviderResult,
        prompt: Prompt,
        attempts: list[Attempt],
        started: float,
        budget_limited: bool = False,
    ) -> Generation:
        paid = [a for a in attempts if a.status == "ok"]
        return Generation(
            task=task,
            provider=step.provider,
            model=result.model,
            text=result.text,
            prompt_text=prompt.render(),
            tokens_in=_total(a.tokens_in for a in paid),
            tokens_out=_total(a.tokens_out for a in paid),
            cost_usd=_total(a.cost_usd for a in paid),
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=attempts,
            offline=step.provider == "offline",
            tier=step.tier,
            budget_limited=budget_limited,
            user_id=prompt.user_id,
        )

    # --- streaming ----------------------------------------------------------------------
    def stream(self, task: str, prompt: Prompt) -> Iterator[str | StreamReset | Generation]:
        """Text deltas, then one Generation (always last, with the complete text).

        Retries and fallbacks before the first delta are invisible to the caller. If a
        provider fails after it has streamed text, a StreamReset is yielded and the next
        provider starts over: discard what was shown, or rely on the final Generation.
        Raises LLMUnavailableError (possibly after deltas) when the chain is exhausted.

        Under the deadline like `generate`: a network provider's stream is read on a
        worker thread and waited for only until the deadline, so one that hangs before
        its first delta or stalls mid-stream (whatever its read timeouts do) is given
        up on in time, and the offline composer (or whatever is left) answers.
        """
        started = time.perf_counter()
        deadline = time.monotonic() + self.deadline_s if self.deadline_s else None
        attempts: list[Attempt] = []
        steps, limited = self.plan(task, prompt, attempts)
        for step in steps:
            name, model = step.provider, step.model
            own_deadline = deadline if name != "offline" else None
            if own_deadline is not None and own_deadline - time.monotonic() < MIN_CALL_S:
                attempts.append(Attempt(name, model, "skipped", error="deadline passed"))
                continue
            try:
                t0, first, rest = self._retrying(own_deadline)(
                    self._open_stream, name, model, prompt, attempts, own_deadline
                )
            except (ProviderError, _CircuitOpen):
                continue
            settled = False
            try:
                for item in _chain_first(first, rest):
                    if isinstance(item, ProviderResult):
                        settled = True
                        self.breakers[name].record_success()
                        attempts.append(self._ok_attempt(name, item, t0, prompt.user_id))
                        yield self._generation(task, step, item, prompt, attempts, started, limited)
                        return
                    yield item
                raise ProviderError(name, "stream ended without a final result", transient=False)
            except Exception as exc:  # noqa: BLE001 - a provider's failure (or bug) means fall back
                settled = True
                error = self._failed(name, model, exc, t0, attempts)
                yield StreamReset(name, str(error)[:300])
            finally:
                if not settled:  # the caller closed the stream: no verdict on the provider
                    self.breakers[name].release()
                close = getattr(rest, "close", None)
                if close is not None:
                    close()  # release the HTTP response even when the caller stops early
        raise LLMUnavailableError(task, attempts, prompt.render(), prompt.user_id)

    def _open_stream(
        self,
        name: str,
        model: str,
        prompt: Prompt,
        attempts: list[Attempt],
        deadline: float | None = None,
    ) -> tuple[float, str | ProviderResult, Iterator[str | ProviderResult]]:
        """Start a stream and read its first item: the part that may be retried transparently."""
        if not self.breakers[name].allow():
            attempts.append(Attempt(name, model, "skipped", error="circuit open"))
            raise _CircuitOpen(name)
        t0 = time.perf_counter()
        try:
            if deadline is None:
                iterator: Iterator[str | ProviderResult] = iter(
                    self.providers[name].stream(model, prompt, self.timeout_s)
                )
            else:
                timeout = max(0.1, min(self.timeout_s, deadline - time.monotonic()))
                iterator = _DeadlineStream(name, lambda: self.providers[name].stream(model, prompt, timeout), deadline)
            first = next(iterator)
        except StopIteration:
            raise self._failed(name, model, ProviderError(name, "empty stream", transient=True), t0, attempts) from None
        except Exception as exc:
            raise self._failed(name, model, exc, t0, attempts) from exc
        return t0, first, iterator

    # --- structured output -------------------------------------------------------------
    def generate_json(self, task: str, prompt: Prompt, schema: type[M]) -> Generation:
        """A Generation whose `.parsed` is a validated `schema` instance.

        The answer is repaired when that is safe (code fences, prose around the object);
        otherwise the same provider is asked again with the validation error, up to
        `json_attempts` times, then the next provider. Nothing that fails validation is
        ever returned: StructuredOutputError instead.
        """
        started = time.perf_counter()
        base = replace(
            prompt, system=f"{prompt.system}\n\n{json_instruction(schema)}", json_schema=schema.model_json_schema()
        )
        attempts: list[Attempt] = []
        strikes: Counter[str] = Counter()
        current = base
        while True:
            struck = frozenset(name for name, n in strikes.items() if n >= self.json_attempts)
            try:
                generation = self._generate(task, current, struck) if len(struck) < len(self.order) else None
            except LLMUnavailableError as exc:
                attempts += exc.attempts
                generation = None
            if generation is None:
                raise StructuredOutputError(task, attempts, base.render(), prompt.user_id)
            attempts += generation.attempts
            try:
                parsed = parse_as(generation.text, schema)
            except InvalidJsonAnswer as exc:
                # The call succeeded but its answer is unusable: mark it so in the audit trail.
                attempts[-1] = replace(attempts[-1], status="error", error=f"invalid JSON answer: {exc}"[:500])
                strikes[generation.provider] += 1
                current = replace(
                    base,
                    messages=(
                        *base.messages,
                        Message("assistant", generation.text[:4000]),
                        Message("user", f"Your answer was rejected ({exc}). Reply again with only the JSON object."),
                    ),
                )
                continue
            paid = [a for a in attempts if a.tokens_in is not None or a.cost_usd is not None]
            generation.attempts = attempts
            generation.parsed = parsed
            generation.prompt_text = base.render()
            generation.tokens_in = _total(a.tokens_in for a in paid)
            generation.tokens_out = _total(a.tokens_out for a in paid)
            generation.cost_usd = _total(a.cost_usd for a in paid)
            generation.latency_ms = (time.perf_counter() - started) * 1000
            return generation


def _log_call(attempt: Attempt, outcome: str) -> None:
    """The stable `llm_call` event (docs/deploy.md, Monitoring): provider failure rate,
    latency per provider and daily cost are counted from it."""
    log_event(
        log,
        "llm_call",
        logging.WARNING if outcome == "error" else logging.INFO,
        provider=attempt.provider,
        model=attempt.model,
        outcome=outcome,
        latency_ms=round(attempt.latency_ms, 1),
        tokens_in=attempt.tokens_in,
        tokens_out=attempt.tokens_out,
        cost_usd=attempt.cost_usd,
    )


def _chain_first(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _total(values: Any) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    total = sum(present)
    return round(total, 9) if isinstance(total, float) else total


def _build_provider(name: str, settings: Any) -> Provider | None:
    """One provider from the settings, or None (with the reason logged) when it cannot run."""
    max_tokens = settings.llm_max_output_tokens
    if name == "offline":
        from shared.llm.providers.offline import OfflineProvider

        return OfflineProvider()
    if name == "vertex":
        from shared.llm.providers.vertex import VertexProvider

        return VertexProvider(
            settings.gcp_project,
            settings.vertex_llm_location or settings.gcp_region,
            base_url=settings.vertex_base_url,
            max_output_tokens=max_tokens,
        )
    if name == "openai":
        if settings.openai_api_key is None:
            log.warning("LLM provider openai is configured but OPENAI_API_KEY is not set: skipped")
            return None
        from shared.llm.providers.openai_api import OpenAIProvider

        return OpenAIProvider(
            settings.openai_api_key.get_secret_value(), base_url=settings.openai_base_url, max_output_tokens=max_tokens
        )
    if name == "anthropic":
        if settings.anthropic_api_key is None:
            log.warning("LLM provider anthropic is configured but ANTHROPIC_API_KEY is not set: skipped")
            return None
        from shared.llm.providers.anthropic_api import AnthropicProvider

        return AnthropicProvider(
            settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            max_output_tokens=max_tokens,
        )
    if name == "local":
        if settings.local_llm_base_url is None:
            log.warning("LLM provider local is configured but LOCAL_LLM_BASE_URL is not set: skipped")
            return None
        from shared.llm.providers.local_openai import LocalOpenAIProvider

        key = settings.local_llm_api_key
        return LocalOpenAIProvider(
            settings.local_llm_base_url,
            api_key=None if key is None else key.get_secret_value(),
            max_output_tokens=max_tokens,
        )
    if name == "gguf":
        return _build_gguf(settings, max_tokens)
    log.error("unknown LLM provider %r in LLM_PROVIDERS: skipped", name)
    return None


def _build_gguf(settings: Any, max_tokens: int) -> Provider | None:
    """The in-process GGUF provider, if the extra is installed and the file exists."""
    import importlib.util

    path = settings.gguf_model_path
    if path is None or not path.is_file():
        log.warning("LLM provider gguf is configured but GGUF_MODEL_PATH names no file (%s): skipped", path)
        return None
    if importlib.util.find_spec("llama_cpp") is None:
        log.warning("LLM provider gguf is configured but llama-cpp-python is not installed: skipped")
        return None
    from shared.llm.providers.gguf import GGUFProvider

    return GGUFProvider(
        path, n_ctx=settings.gguf_context, n_threads=settings.gguf_threads, max_output_tokens=max_tokens
    )


def _local_models(settings: Any) -> dict[str, dict[str, str]]:
    """The local providers' model names come from their own settings unless LLM_MODELS names them."""
    models = {name: dict(per_task) for name, per_task in settings.llm_models.items()}
    models.setdefault("local", {"default": settings.local_llm_model})
    if settings.gguf_model_path is not None:
        models.setdefault("gguf", {"default": settings.gguf_model_path.stem})
    return models


_router: LLMRouter | None = None
_router_lock = threading.Lock()


def get_router() -> LLMRouter:
    """The process's router: breakers must outlive a request to be of any use. Built once
    under a lock: the warm-up thread (shared/warm_up.py) and a first request may ask at
    the same moment, and both must get the router whose client was warmed."""
    global _router
    if _router is None:
        with _router_lock:
            if _router is None:
                from shared.config import get_settings

                _router = LLMRouter.from_settings(get_settings())
    return _router


def router_built() -> bool:
    """Whether this process has built its router (an LLM call or the warm-up did)."""
    return _router is not None


def reset_router() -> None:
    """For tests and CLIs that change the environment after import."""
    global _router
    with _router_lock:
        _router = None


# A provider call needs at least this long to be worth starting before the deadline.
MIN_CALL_S = 0.5


_END = object()


class _DeadlineStream:
    """A provider's stream read on a worker thread, waited for only until the deadline.

    The provider's own timeouts bound a read, not the whole call, and a provider bug can
    block for ever; this makes the deadline hold whatever the provider does. When the
    deadline passes the caller gets a transient ProviderError at once; the worker is told
    to stop and ends (closing the provider's stream) as soon as its blocked read returns.
    """

    def __init__(self, provider: str, open_stream: Callable[[], Any], deadline: float) -> None:
        self.provider = provider
        self.deadline = deadline
        self._items: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(
            target=self._run, args=(open_stream,), name=f"llm-stream-{provider}", daemon=True
        )
        self._worker.start()

    def _run(self, open_stream: Callable[[], Any]) -> None:
        source: Any = None
        try:
            source = iter(open_stream())
            for item in source:
                if self._stop.is_set():
                    break
                self._items.put((item, None))
            self._items.put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._items.put((None, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> _DeadlineStream:
        return self

    def __next__(self) -> Any:
        try:
            item, exc = self._items.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            self._stop.set()
            raise ProviderError(self.provider, "no answer before the deadline", transient=True) from None
        if exc is not None:
            raise exc
        if item is _END:
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()


class _StopAtDeadline(stop_base):
    """tenacity stop: no new try once fewer than MIN_CALL_S seconds are left."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: Any) -> bool:
        return time.monotonic() + MIN_CALL_S >= self.deadline
