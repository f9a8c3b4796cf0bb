"""Personalised content for a topic, end to end: plan, write (or draw from the bank), log.

The chat function's `/content` route only validates the request and picks JSON or a
stream; everything a request does lives here, so both answers log the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from shared.content.generator import ContentRequest, Plan, describe, generate_quiz, plan, stream_explanation
from shared.identity import Principal
from shared.llm.generation_log import log_generation
from shared.llm.router import get_router
from shared.llm.types import Generation, StreamReset


def plan_content(engine: sa.Engine, user: Principal, request: ContentRequest) -> Plan:
    """What to write, for whom: raises TopicNotFoundError before anything is generated."""
    with engine.begin() as conn:
        return plan(conn, user, request)


def _log(engine: sa.Engine, generation: Generation, request_id: str) -> None:
    with engine.begin() as conn:
        log_generation(conn, generation, request_id, None)


def write_content(engine: sa.Engine, kind: str, the_plan: Plan, request_id: str) -> dict[str, Any]:
    """The whole quiz (validated JSON) or explanation, with which provider wrote it."""
    meta = describe(the_plan)
    router = get_router()
    if kind == "quiz":
        quiz, generation, source = generate_quiz(router, the_plan)
        _log(engine, generation, request_id)
        quiz_part = {"quiz": quiz.model_dump(), "source": source}
        return {**meta, **quiz_part, "provider": generation.provider, "llm": generation.usage()}
    generation = router.generate("explanation", the_plan.prompt)
    _log(engine, generation, request_id)
    return {**meta, "text": generation.text, "provider": generation.provider, "llm": generation.usage()}


def explanation_events(engine: sa.Engine, the_plan: Plan, request_id: str) -> Iterator[tuple[str, Any]]:
    """The explanation as (event, data) pairs for SSE: metadata, deltas, resets, final."""
    meta = describe(the_plan)
    yield "metadata", meta
    for item in stream_explanation(get_router(), the_plan):
        if isinstance(item, str):
            yield "delta", {"text": item}
        elif isinstance(item, StreamReset):
            yield "reset", {"failed_provider": item.failed_provider}
        else:
            _log(engine, item, request_id)
            yield "final", {**meta, "text": item.text, "provider": item.provider, "llm": item.usage()}
