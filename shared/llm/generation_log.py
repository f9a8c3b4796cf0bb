"""Usage written to `generation_log`: one row per provider call, so cost and failures add up.

A generation that needed retries or a fallback writes its failed calls (status
`error`) before the call that answered (`ok`, or `fallback` when an earlier provider
failed). Skipped providers (open breaker) made no call and write no row; they are in
the Generation's attempts for the interaction log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.llm.errors import LLMUnavailableError
from shared.llm.types import Attempt, Generation

if TYPE_CHECKING:  # sqlalchemy is imported when a row is written, not when shared.llm is
    import sqlalchemy as sa

_INSERT_SQL = """INSERT INTO generation_log
           (request_id, interaction_id, user_id, task, provider, model, prompt, raw_response, status, error,
            tokens_in, tokens_out, cost_usd, latency_ms)
       VALUES (:request_id, :interaction_id, :user_id, :task, :provider, :model, :prompt, :raw_response, :status,
               :error, :tokens_in, :tokens_out, :cost_usd, :latency_ms)
       RETURNING id"""


def log_generation(
    conn: sa.Connection, generation: Generation, request_id: str | None = None, interaction_id: str | None = None
) -> list[int]:
    """Write the generation's calls; returns the new row ids in call order."""
    final_status = generation.status
    return _write(
        conn,
        generation.task,
        generation.prompt_text,
        generation.attempts,
        request_id,
        interaction_id,
        ok_status=final_status,
        user_id=generation.user_id,
    )


def log_failure(
    conn: sa.Connection, error: LLMUnavailableError, request_id: str | None = None, interaction_id: str | None = None
) -> list[int]:
    """Write the calls of a generation that no provider could complete."""
    return _write(
        conn,
        error.task,
        error.prompt_text,
        error.attempts,
        request_id,
        interaction_id,
        ok_status="ok",
        user_id=error.user_id,
    )


def spent_today(conn: sa.Connection, user_id: str | None = None) -> float:
    """USD booked since midnight UTC, of everyone or of one user: what the daily budget reads."""
    import sqlalchemy as sa

    sql = """SELECT COALESCE(SUM(cost_usd), 0) FROM generation_log
              WHERE created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"""
    params: dict[str, Any] = {}
    if user_id is not None:
        sql += " AND user_id = :user_id"
        params["user_id"] = user_id
    return float(conn.execute(sa.text(sql), params).scalar_one())


def _write(
    conn: sa.Connection,
    task: str,
    prompt: str,
    attempts: list[Attempt],
    request_id: str | None,
    interaction_id: str | None,
    *,
    ok_status: str,
    user_id: str | None = None,
) -> list[int]:
    import sqlalchemy as sa

    insert = sa.text(_INSERT_SQL)
    ids: list[int] = []
    for attempt in attempts:
        if attempt.status == "skipped":
            continue
        row: dict[str, Any] = {
            "request_id": request_id,
            "interaction_id": interaction_id,
            "user_id": user_id,
            "task": task,
            "provider": attempt.provider,
            "model": attempt.model,
            "prompt": prompt,
            "raw_response": attempt.raw_response,
            "status": ok_status if attempt.status == "ok" else "error",
            "error": attempt.error,
            "tokens_in": attempt.tokens_in,
            "tokens_out": attempt.tokens_out,
            "cost_usd": attempt.cost_usd,
            "latency_ms": round(attempt.latency_ms, 3),
        }
        ids.append(conn.execute(insert, row).scalar_one())
    return ids
