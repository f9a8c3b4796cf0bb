"""The router's vocabulary: what the orchestrator sends in and what it gets back.

Kept free of any provider's imports so the chat function can build prompts and read
generations without loading a provider it does not call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Source:
    """One retrieved knowledge node the reply may be grounded in."""

    node_id: str
    title: str
    snippet: str
    topic_id: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class Grounding:
    """What the small models decided, for the offline provider (which cannot "write").

    LLM providers read the rendered prompt instead; the offline provider composes its
    answer from these fields only, so it can never say more than the material holds.
    """

    intent: str
    query: str
    sources: tuple[Source, ...] = ()
    is_confused: bool = False
    suggestion: str | None = None
    mastery: float | None = None
    topic_title: str | None = None


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Prompt:
    """A provider-neutral request: system instructions, conversation, and knobs.

    `messages` ends with the user turn to answer. `grounding` feeds the offline
    provider; `offline_json` is the structured answer the offline provider returns for
    JSON tasks (e.g. a quiz built from the question bank), since it must not invent one.
    """

    system: str
    messages: tuple[Message, ...]
    temperature: float = 0.3
    max_output_tokens: int | None = None
    grounding: Grounding | None = None
    offline_json: dict[str, Any] | None = None
    #: set by LLMRouter.generate_json: ask the provider for JSON matching this schema
    json_schema: dict[str, Any] | None = None
    #: whom the text is for: their daily budget applies and the generation log names them
    user_id: str | None = None

    @classmethod
    def simple(cls, system: str, user: str, **kw: Any) -> Prompt:
        return cls(system=system, messages=(Message("user", user),), **kw)

    def render(self) -> str:
        """The prompt as one text, for the generation log and for token estimates."""
        parts = [f"[system]\n{self.system}"]
        parts += [f"[{m.role}]\n{m.content}" for m in self.messages]
        return "\n\n".join(parts)


@dataclass(frozen=True)
class ProviderResult:
    """What a provider returns for one successful call (before the router adds costs)."""

    text: str
    model: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One call (or skip) of one provider, successful or not: the audit trail."""

    provider: str
    model: str
    status: Literal["ok", "error", "skipped"]
    error: str | None = None
    latency_ms: float = 0.0
    raw_response: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None


@dataclass
class Generation:
    """The router's answer: the text and everything the logs and the response need."""

    task: str
    provider: str
    model: str
    text: str
    prompt_text: str
    #: totals over every call this generation paid for (a rejected JSON answer costs too)
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float
    attempts: list[Attempt] = field(default_factory=list)
    offline: bool = False
    #: generate_json only: the validated pydantic object
    parsed: Any = None
    #: the routing decision: the answering choice's quality tier (None: the task has no routes)
    tier: int | None = None
    #: the daily budget made the router prefer cheaper choices or skip some
    budget_limited: bool = False
    user_id: str | None = None

    @property
    def fallbacks(self) -> int:
        """How many providers failed or were skipped before the one that answered."""
        return len({a.provider for a in self.attempts if a.status != "ok" and a.provider != self.provider})

    @property
    def status(self) -> Literal["ok", "fallback"]:
        return "fallback" if self.fallbacks else "ok"

    def usage(self) -> dict[str, Any]:
        """The compact summary an interaction-log row or an API response carries."""
        return {
            "provider": self.provider,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 2),
            "attempts": len(self.attempts),
            "fallbacks": self.fallbacks,
            "offline": self.offline,
            "tier": self.tier,
            "budget_limited": self.budget_limited,
        }


@dataclass(frozen=True)
class StreamReset:
    """Yielded by LLMRouter.stream when a provider failed after it had sent text.

    The text streamed so far is void; the next provider's deltas start over. The final
    Generation's text is always the complete, authoritative reply.
    """

    failed_provider: str
    reason: str
