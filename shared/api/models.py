"""Pydantic request models that more than one function accepts."""

from __future__ import annotations

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
