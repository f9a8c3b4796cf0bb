"""Grading function: grade an answer (MCQ or short answer) and serve graded attempts.

POST /api/grading            {question_id, answer, time_seconds?, attempt_id?, user_id?}
GET  /api/grading/attempts   ?user_id=&limit=
The logic lives in `shared/grading/` (see docs/grading.md); this file is routes and
request models only.
"""

from __future__ import annotations

from uuid import UUID

import flask
import functions_framework
from pydantic import Field, field_validator

from shared.api.models import StrictModel, UserQuery
from shared.attempts import list_attempts
from shared.db import get_engine
from shared.grading.service import MAX_ANSWER_CHARS, get_grading_service
from shared.http import Request, Router
from shared.http.idempotency import idempotent
from shared.http.limits import rate_limited
from shared.logs import configure_logging

configure_logging()
router = Router("grading")


class GradeRequest(StrictModel):
    """An option index for multiple choice, text for a short answer."""

    question_id: str = Field(min_length=1, max_length=128)
    answer: int | str
    time_seconds: float | None = Field(None, ge=0, le=86_400, allow_inf_nan=False)
    attempt_id: UUID | None = None
    user_id: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_shape(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("must be an option index (integer) or the answer text")
        if isinstance(value, str):
            # An empty answer is an answer (graded 0 by rule), not a malformed request.
            if len(value) > MAX_ANSWER_CHARS:
                raise ValueError(f"must be at most {MAX_ANSWER_CHARS} characters")
        return value


@router.post("/", body=GradeRequest)
@idempotent("grading")
@rate_limited("llm_grading", when=lambda req: isinstance(req.body.answer, str) and bool(req.body.answer.strip()))
def grade(req: Request) -> dict:
    body: GradeRequest = req.body
    return get_grading_service().grade(
        get_engine(),
        req.user,
        question_id=body.question_id,
        answer=body.answer,
        time_seconds=body.time_seconds,
        attempt_id=str(body.attempt_id) if body.attempt_id else None,
        user_id=body.user_id,
        request_id=req.request_id,
    )


@router.get("/attempts", query=UserQuery)
def attempts(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "attempts": list_attempts(conn, user_id, req.query.limit)}


@functions_framework.http
def grading(request: flask.Request) -> flask.Response:
    return router.handle(request)
