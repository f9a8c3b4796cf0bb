"""Pydantic request models that more than one function accepts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Unknown fields are an error: a typo in a client should not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserQuery(StrictModel):
    """`?user_id=` defaults to the caller; a student may only name themself."""

    user_id: str | None = Field(None, min_length=1, max_length=128)
    limit: int = Field(50, ge=1, le=500)
