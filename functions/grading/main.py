"""Grading function: grade an answer (MCQ or short answer) and serve graded attempts.

POST /api/grading            {question_id, answer, time_seconds?, attempt_id?, user_id?}
GET  /api/grading/attempts   ?user_id=&limit=
The logic lives in `shared/grading/` (see docs/grading.md); this file is routes and
request models only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import flask
import functions_framework
from pydantic import Field, field_validator

from shared.api.models import ResponseBody, ResponseModel, StrictModel, UserQuery
from shared.attempts import list_attempts
from shared.db import get_engine
from shared.grading.service import MAX_ANSWER_CHARS, get_grading_service
from shared.http import Request, Router
from shared.http.idempotency import idempotent
from shared.http.limits import rate_limited
from shared.logs import configure_logging
from shared.models.registry import serve_models

configure_logging()
#: The published models this function loads (short answers: the grader model on the encoder's similarities);
#: the others are neither fetched nor loaded (shared/models/registry.py).
SERVED_MODELS = serve_models("grader", "encoder")
router = Router("grading", openapi=True)


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


class Graded(ResponseBody):
    """The grade, the feedback, and the student's mastery of the topic after it."""

    attempt_id: UUID
    user_id: str
    question_id: str
    topic_id: str
    kind: Literal["mcq", "short_answer"]
    correct: bool
    score: float = Field(ge=0, le=10)
    max_score: int
    verdict: str
    feedback: str
    grader: str = Field(description="mcq, the grader model, lexical, or an LLM")
    grader_version: str
    flags: list[str] = Field(description="e.g. possible_prompt_injection")
    mastery: float
    counted: bool = Field(description="false for a repeat of a question already answered (changes no mastery)")
    repeat_of: UUID | None = Field(description="the counted attempt this one repeats")
    time_seconds: float | None


@router.post("/", body=GradeRequest, response=Graded)
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


class AttemptOut(ResponseModel):
    id: UUID
    question_id: str | None
    topic_id: str
    difficulty: int
    status: str = Field(description="predicted, completed or repeat")
    predicted_correct: float | None
    predicted_seconds: float | None
    predictor: str | None
    correct: bool | None
    score: float | None
    verdict: str | None
    feedback: str | None
    grader: str | None
    time_seconds: float | None
    created_at: datetime
    completed_at: datetime | None


class Attempts(ResponseBody):
    user_id: str
    attempts: list[AttemptOut]


@router.get("/attempts", query=UserQuery, response=Attempts)
def attempts(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "attempts": list_attempts(conn, user_id, req.query.limit)}


@functions_framework.http
def grading(request: flask.Request) -> flask.Response:
    return router.handle(request)
