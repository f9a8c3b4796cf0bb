"""Prediction function: P(correct) and expected time before a task, the outcome after it,
a student's mastery per topic, and the questions a student can be served (with their
predictions on request). Logic lives in shared/prediction/ and shared/curriculum.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import flask
import functions_framework
from pydantic import Field, StrictBool, model_validator

from shared.api.models import ResponseBody, ResponseModel, RetrainRequestOut, StrictModel, UserQuery
from shared.attempts import complete_attempt
from shared.db import get_engine
from shared.http import Request, Router
from shared.http.idempotency import idempotent
from shared.learning.outbox import sweep_after_commit
from shared.logs import configure_logging
from shared.mastery.store import mastery_by_topic
from shared.models.registry import serve_models
from shared.prediction.service import predict_and_record, questions_for
from shared.users import ensure_user

configure_logging()
#: The published models this function loads (P(correct) and expected time);
#: the others are neither fetched nor loaded (shared/models/registry.py).
SERVED_MODELS = serve_models("predictor")
router = Router("prediction", openapi=True)


class PredictBody(StrictModel):
    topic_id: str | None = Field(None, min_length=1, max_length=128)
    difficulty: int | None = Field(None, ge=1, le=5)
    question_id: str | None = Field(None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _task_named(self) -> PredictBody:
        if self.topic_id is None and self.question_id is None:
            raise ValueError("name the task: topic_id (with difficulty 1-5) or question_id")
        if self.question_id is None and self.difficulty is None:
            raise ValueError("difficulty (1-5) is required without a question_id")
        return self


class CompleteBody(StrictModel):
    attempt_id: str = Field(..., min_length=1, max_length=64)
    correct: StrictBool
    time_seconds: float = Field(..., ge=0, le=86_400, allow_inf_nan=False)


class QuestionsQuery(StrictModel):
    topic_id: str = Field(..., min_length=1, max_length=128)
    difficulty: int | None = Field(None, ge=1, le=5)
    predict: bool = False
    limit: int = Field(100, ge=1, le=500)


class TopicMastery(ResponseModel):
    topic_id: str
    title: str
    course_id: str
    p_mastery: float = Field(ge=0, le=1, description="BKT P(mastered); the topic's prior before any task")
    n_updates: int
    updated_at: datetime | None
    tasks_completed: int
    tasks_correct: int


class Mastery(ResponseBody):
    user_id: str
    mastery: list[TopicMastery]


class LevelPrediction(ResponseModel):
    p_correct: float = Field(ge=0, le=1)
    expected_seconds: float
    model: str
    model_version: str | None


class QuestionOut(ResponseModel):
    """A question as the student sees it: never the answer key or reference answers."""

    id: str
    topic_id: str
    kind: Literal["mcq", "short_answer"]
    prompt: str
    options: list[str] | None = Field(description="the choices of a multiple-choice question")
    difficulty: int
    max_score: int
    prediction: LevelPrediction | None = Field(None, description="only with predict=true")


class Questions(ResponseBody):
    user_id: str
    topic_id: str
    questions: list[QuestionOut]


class Features(ResponseModel):
    """The student's history the prediction used (null: no evidence yet)."""

    overall_success_rate: float | None
    overall_avg_seconds: float | None
    overall_count: int
    topic_success_rate: float | None
    topic_avg_seconds: float | None
    topic_count: int
    difficulty_success_rate: float | None
    difficulty_avg_seconds: float | None
    difficulty_count: int
    recent5_success_rate: float | None
    recent5_avg_seconds: float | None


class Prediction(ResponseBody):
    """P(correct) and expected time, recorded as a 'predicted' attempt to complete later."""

    p_correct: float = Field(ge=0, le=1)
    expected_seconds: float
    model: str
    model_version: str | None
    features: Features
    unknown: list[str] = Field(description="what the model has not seen before: user, topic")
    fallback_reason: str | None
    attempt_id: UUID
    user_id: str
    topic_id: str
    question_id: str | None
    difficulty: int


class Completed(ResponseBody):
    """The outcome stored beside the prediction, and the mastery after it."""

    attempt_id: UUID
    user_id: str
    topic_id: str
    question_id: str | None
    difficulty: int
    correct: bool
    credit: float = Field(description="the evidence in [0, 1] given to mastery")
    score: float
    time_seconds: float | None
    predicted_correct: float | None
    predicted_seconds: float | None
    predictor: str | None
    predictor_version: str | None
    mastery: float
    completed_at: datetime
    completed_tasks: int = Field(description="the global count of completed tasks after this one")
    retrain_request: RetrainRequestOut | None = Field(description="recorded when this completion reached the threshold")
    counted: bool
    repeat_of: UUID | None


@router.get("/mastery", query=UserQuery, response=Mastery)
def mastery(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "mastery": mastery_by_topic(conn, user_id)}


@router.get("/questions", query=QuestionsQuery, response=Questions)
def questions(req: Request) -> dict:
    """A topic's questions as a student sees them (never the answer key or the reference
    answers); with `predict=true`, each with this student's P(correct) and expected
    seconds. A read: nothing is recorded; POST / with a question_id starts an attempt."""
    query: QuestionsQuery = req.query
    with get_engine().connect() as conn:
        items = questions_for(
            conn,
            req.user.uid,
            query.topic_id,
            difficulty=query.difficulty,
            limit=query.limit,
            with_predictions=query.predict,
        )
    return {"user_id": req.user.uid, "topic_id": query.topic_id, "questions": items}


@router.post("/", body=PredictBody, response=Prediction)
def predict_task(req: Request) -> dict:
    """Predict, and record the prediction as a 'predicted' attempt to complete later."""
    body: PredictBody = req.body
    with get_engine().begin() as conn:
        return predict_and_record(
            conn, req.user, topic_id=body.topic_id, question_id=body.question_id, difficulty=body.difficulty
        )


@router.post("/complete", body=CompleteBody, response=Completed)
@idempotent("task_completion")
def complete(req: Request) -> dict:
    """The actual outcome of a predicted attempt: stored beside the prediction."""
    body: CompleteBody = req.body
    with get_engine().begin() as conn:
        ensure_user(conn, req.user)
        done = complete_attempt(
            conn,
            req.user.uid,
            body.attempt_id,
            correct=1.0 if body.correct else 0.0,
            time_seconds=body.time_seconds,
            self_reported=True,
        )
    if done.retrain_request is not None:
        sweep_after_commit()  # the request is committed: publish it now (best effort, see outbox)
    return done.as_dict()


@functions_framework.http
def prediction(request: flask.Request) -> flask.Response:
    return router.handle(request)
