"""Pydantic request and response models that more than one function uses, and their bases."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _integer_only(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


# For a Literal of integers: strict mode cannot apply to a Literal, and `true == 1 == 1.0`
# would pass it. Usage: `score: Annotated[Literal[-1, 1], IntegerOnly]`.
IntegerOnly = BeforeValidator(_integer_only)


class StrictModel(BaseModel):
    """Unknown fields are an error: a typo in a client should not pass silently.

    Bodies are validated in strict mode by the router (JSON types as declared: no
    `true` for 1, no 1 for "1"); query strings in lax mode (text parsed into numbers).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserQuery(StrictModel):
    """`?user_id=` defaults to the caller; a student may only name themself."""

    user_id: str | None = Field(None, min_length=1, max_length=128)
    limit: int = Field(50, ge=1, le=500)


# -- response bodies -----------------------------------------------------------------------
# Every route declares the model of its success body (`@router.get(..., response=X)`).
# Handlers still return plain dicts; the router checks the dict against the model
# (shared/http/router.py: `_check_response`) and the OpenAPI document publishes the
# model's schema. Models forbid unknown keys, so a service that starts returning a new
# field, or stops returning one, fails the tests that call the route until the model
# says so. Keys are always present (no defaults): a value that can be missing is
# `X | None`.


class ResponseModel(BaseModel):
    """A part of a success body: every key declared, none unknown."""

    model_config = ConfigDict(extra="forbid")


class ResponseBody(ResponseModel):
    """A whole success body: the router adds the request id to every JSON answer."""

    request_id: str = Field(description="The request id (also the X-Request-Id header)")


class LlmUsage(ResponseModel):
    """Which language model wrote a text, and what it cost (shared/llm/types.py: usage)."""

    provider: str
    model: str
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float
    attempts: int
    fallbacks: int
    offline: bool
    tier: int | None = Field(description="the answering choice's quality tier (null: the task has no routes)")
    budget_limited: bool = Field(description="true when the daily budget moved the call to a cheaper choice")


class RetrainRequestOut(ResponseModel):
    """A retrain request this call recorded (shared/learning/retrain_requests.py)."""

    id: int
    reason: str
    threshold: int


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (what `GET /openapi.json` of a function answers)."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
